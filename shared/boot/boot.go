// Package boot builds what every wxsession function needs at start-up: the
// JSON logger, the session store, the WeChat client and the session service.
// It runs once per process (once per cold start), never per request.
package boot

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store"
	"github.com/wxsession/wxsession/shared/wechat"
)

// Logger makes a JSON slog logger on stderr the default and returns it. Log
// lines are JSON so CloudWatch and CLS can index their fields.
func Logger() *slog.Logger {
	l := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(l)
	return l
}

// Service builds the session service cfg describes, over the store cfg names
// and talking to WeChat at cfg.APIBase.
func Service(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...store.Option) (*session.Service, error) {
	st, err := store.Open(ctx, cfg, time.Now, opts...)
	if err != nil {
		return nil, err
	}
	wx := wechat.NewClient(cfg.APIBase, cfg.AppID, cfg.Secret, nil)
	return session.NewService(cfg, st, wx, session.WithLogger(log))
}

// MustService is Service for a function's main: on failure it prints one line
// and exits. It also starts the store's first connection in the background
// (store.WarmConnection), where it overlaps the runtime's own start instead of
// delaying the first request.
func MustService(cfg config.Config) *session.Service {
	svc, err := Service(context.Background(), cfg, Logger(), store.WarmConnection())
	if err != nil {
		config.Exit(err)
	}
	return svc
}
