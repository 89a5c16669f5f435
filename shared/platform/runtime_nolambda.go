//go:build wxsession_nolambda

package platform

import "net/http"

// startLambda is nil: this build leaves AWS Lambda out (-tags wxsession_nolambda).
var startLambda func(http.Handler)
