//go:build wxsession_lambda && !wxsession_scf

package platform

import "net/http"

// startSCF is nil: this build (-tags wxsession_lambda) links AWS Lambda only.
var startSCF func(http.Handler)
