//go:build wxsession_scf && !wxsession_lambda

package platform

import "net/http"

// startLambda is nil: this build (-tags wxsession_scf) links Tencent SCF only.
var startLambda func(http.Handler)
