//go:build !wxsession_noredis

package store

import (
	"time"

	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/redis"
)

func openRedis(cfg config.Config, now func() time.Time) (session.Store, error) {
	var opts []redis.ClientOption
	if cfg.RedisCAFile != "" {
		opts = append(opts, redis.WithCAFile(cfg.RedisCAFile))
	}
	client, err := redis.NewClient(cfg.RedisURL, opts...)
	if err != nil {
		return nil, &config.Error{Var: "REDIS_URL", Reason: err.Error()}
	}
	return redis.New(client, now), nil
}
