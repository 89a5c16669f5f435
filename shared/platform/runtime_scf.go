//go:build !wxsession_noscf

package platform

import "github.com/wxsession/wxsession/shared/platform/scf"

// startSCF serves a handler to the Tencent SCF Go1 runtime.
var startSCF = scf.Start
