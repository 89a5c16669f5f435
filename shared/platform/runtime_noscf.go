//go:build wxsession_noscf

package platform

import "net/http"

// startSCF is nil: this build (-tags wxsession_noscf) leaves Tencent SCF out.
var startSCF func(http.Handler)
