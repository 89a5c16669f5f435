//go:build wxsession_noredis

package store

import (
	"time"

	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
)

// openRedis refuses: this build leaves Redis out (-tags wxsession_noredis).
func openRedis(config.Config, func() time.Time) (session.Store, error) {
	return nil, &config.Error{Var: "SESSION_STORE", Reason: `"redis" is not built into this binary (it was built with -tags wxsession_noredis)`}
}
