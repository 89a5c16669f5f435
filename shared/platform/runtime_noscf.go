//go:build wxsession_noscf

package platform

import "net/http"

// startSCF is nil: this build leaves Tencent SCF out (-tags wxsession_noscf).
var startSCF func(http.Handler)
