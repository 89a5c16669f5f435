// Package boot builds what every wxsession function needs at start-up: the
// JSON logger, the session store, the WeChat client and the session service.
// It runs once per process (once per cold start), never per request, and it
// is where process-wide choices (the default logger, go-redis's logger) are
// made: the libraries it wires make none.
package boot

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/seal"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store"
	"github.com/wxsession/wxsession/shared/token"
	"github.com/wxsession/wxsession/shared/wechat"
)

// Logger makes a JSON slog logger on stderr the default and returns it. Log
// lines are JSON so CloudWatch and CLS can index their fields; go-redis's own
// lines (a failed dial, say) go through it too.
func Logger() *slog.Logger {
	l := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(l)
	routeRedisLog()
	return l
}

// Service builds the session service cfg describes, over the store cfg names
// and talking to WeChat at cfg.APIBase.
func Service(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...store.Option) (*session.Service, error) {
	st, err := store.Open(ctx, cfg, time.Now, opts...)
	if err != nil {
		return nil, err
	}
	return NewService(cfg, st, wechat.NewClient(cfg.APIBase, cfg.AppID, cfg.Secret, nil), session.WithLogger(log))
}

// NewService builds the session service cfg describes over st, trading login
// codes with wx. It translates the validated configuration into the core's
// settings and adapts the WeChat client to the core's CodeExchanger; with an
// app secret, it also builds the process's one access_token manager over st
// and adapts it to the core's PhoneNumbers and AccessTokens. Every store call,
// the token rows' included, is timed for the request's log line (timeStore).
func NewService(cfg config.Config, st session.Store, wx *wechat.Client, opts ...session.Option) (*session.Service, error) {
	set := session.Settings{
		AppID:           cfg.AppID,
		TTL:             cfg.TTL,
		MaxAge:          cfg.MaxAge,
		WatermarkMaxAge: cfg.WatermarkMaxAge,
		MaxSessions:     cfg.MaxSessionsPerUser,
		// A claim is waited on for as long as the WeChat call behind it may
		// take (an attempt, its retry) plus the store writes.
		ClaimPatience: 2*wechat.DefaultAttemptTimeout + 2*time.Second,
	}
	ring, err := SealRing(cfg)
	if err != nil {
		return nil, err
	}
	var tokenSealer token.Sealer
	if ring != nil {
		set.Sealer, tokenSealer = ring, ring
	}
	st = timeStore(st)
	opts = append(tokenOptions(st, wx, cfg.Secret, tokenSealer), opts...)
	return session.NewService(set, st, codeExchanger{wx}, opts...), nil
}

// SealRing returns the key ring SESSION_SEAL_KEY describes (newest key
// first: it seals, every key opens), or nil when no key is set. Everything
// wxsession seals at rest (session_keys, access tokens) is sealed with it, so
// one rotation covers them all.
func SealRing(cfg config.Config) (*seal.Ring, error) {
	keys := cfg.SealKeys
	if len(keys) == 0 && len(cfg.SealKey) > 0 {
		keys = [][]byte{cfg.SealKey} // a Config built by hand, with only the sealing key
	}
	if len(keys) == 0 {
		return nil, nil
	}
	ring, err := seal.NewRing(keys...)
	if err != nil {
		return nil, fmt.Errorf("SESSION_SEAL_KEY: %w", err)
	}
	return ring, nil
}

// codeExchanger adapts a *wechat.Client to session.CodeExchanger.
type codeExchanger struct{ c *wechat.Client }

func (x codeExchanger) Code2Session(ctx context.Context, code string) (session.WeChatSession, error) {
	ws, err := x.c.Code2Session(ctx, code)
	return session.WeChatSession(ws), err
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
