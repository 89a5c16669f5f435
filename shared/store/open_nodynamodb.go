//go:build wxsession_redis && !wxsession_dynamodb

package store

import (
	"context"
	"time"

	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
)

// openDynamo refuses: this build links Redis only (-tags wxsession_redis).
func openDynamo(context.Context, config.Config, func() time.Time, options) (session.Store, error) {
	return nil, &config.Error{Var: "SESSION_STORE", Reason: `"dynamodb" is not built into this binary (it was built with -tags wxsession_redis)`}
}
