//go:build wxsession_nolambda

package platform

import "net/http"

// startLambda is nil: this build (-tags wxsession_nolambda) leaves AWS Lambda out.
var startLambda func(http.Handler)
