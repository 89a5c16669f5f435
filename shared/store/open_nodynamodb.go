//go:build wxsession_nodynamodb

package store

import (
	"context"
	"time"

	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
)

// openDynamo refuses: this build leaves DynamoDB out (-tags wxsession_nodynamodb).
func openDynamo(context.Context, config.Config, func() time.Time, options) (session.Store, error) {
	return nil, &config.Error{Var: "SESSION_STORE", Reason: `"dynamodb" is not built into this binary (it was built with -tags wxsession_nodynamodb)`}
}
