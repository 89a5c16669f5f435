//go:build !wxsession_nolambda

package platform

import "github.com/wxsession/wxsession/shared/platform/awslambda"

// startLambda serves a handler on the Lambda Runtime API.
var startLambda = awslambda.Start
