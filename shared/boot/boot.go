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

// Services builds one session service per app cfg lists (cfg.AppList), in
// order, over one store, each talking to WeChat at cfg.APIBase with its own
// appid and secret, sharing one access_token manager (its rows are per app).
func Services(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...store.Option) ([]*session.Service, error) {
	st, err := store.Open(ctx, cfg, time.Now, opts...)
	if err != nil {
		return nil, err
	}
	return NewServices(cfg, st, func(a config.App) *wechat.Client {
		return wechat.NewClient(cfg.APIBase, a.ID, a.Secret, nil)
	}, session.WithLogger(log))
}

// NewServices is Services over st, with wxFor making each app's WeChat
// client. The first app's service owns session rows written before rows
// recorded their app (an existing single-app deployment's).
func NewServices(cfg config.Config, st session.Store, wxFor func(config.App) *wechat.Client, opts ...session.Option) ([]*session.Service, error) {
	apps := cfg.AppList()
	if len(apps) == 0 {
		return nil, &config.Error{Var: "WX_APPID", Reason: "required: the mini-program's AppID"}
	}
	ring, err := SealRing(cfg)
	if err != nil {
		return nil, err
	}
	var tokenSealer token.Sealer
	if ring != nil {
		tokenSealer = ring
	}
	st = timeStore(st)
	clients := make([]*wechat.Client, len(apps))
	secrets := make(map[string]string, len(apps))
	for i, a := range apps {
		clients[i] = wxFor(a)
		if a.Secret != "" {
			secrets[a.ID] = a.Secret
		}
	}
	tokOpts := tokenOptions(st, clients[0], secrets, tokenSealer)
	out := make([]*session.Service, len(apps))
	for i, a := range apps {
		set := settings(cfg, a.ID, ring)
		set.LaterApp = i > 0
		o := append(append([]session.Option{}, tokOpts...), opts...)
		out[i] = session.NewService(set, st, codeExchanger{clients[i]}, o...)
	}
	return out, nil
}

// settings translates the validated configuration into one app's core
// settings.
func settings(cfg config.Config, appID string, ring *seal.Ring) session.Settings {
	set := session.Settings{
		AppID:           appID,
		TTL:             cfg.TTL,
		MaxAge:          cfg.MaxAge,
		WatermarkMaxAge: cfg.WatermarkMaxAge,
		MaxSessions:     cfg.MaxSessionsPerUser,
		// A claim is waited on for as long as the WeChat call behind it may
		// take (an attempt, its retry) plus the store writes.
		ClaimPatience: 2*wechat.DefaultAttemptTimeout + 2*time.Second,
	}
	if ring != nil {
		set.Sealer = ring
	}
	return set
}

// NewService builds the session service cfg describes over st, trading login
// codes with wx. It translates the validated configuration into the core's
// settings and adapts the WeChat client to the core's CodeExchanger; with an
// app secret, it also builds the process's one access_token manager over st
// and adapts it to the core's PhoneNumbers and AccessTokens. Every store call,
// the token rows' included, is timed for the request's log line (timeStore).
//
// It serves the first app cfg lists, the owner of unmarked rows.
func NewService(cfg config.Config, st session.Store, wx *wechat.Client, opts ...session.Option) (*session.Service, error) {
	ring, err := SealRing(cfg)
	if err != nil {
		return nil, err
	}
	set := settings(cfg, cfg.AppID, ring)
	var tokenSealer token.Sealer
	if ring != nil {
		tokenSealer = ring
	}
	st = timeStore(st)
	secrets := map[string]string{}
	if cfg.Secret != "" {
		secrets[cfg.AppID] = cfg.Secret
	}
	opts = append(tokenOptions(st, wx, secrets, tokenSealer), opts...)
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

// MustServices is Services for a function's main, as MustService is for
// Service: one service per configured app, in order.
func MustServices(cfg config.Config) []*session.Service {
	svcs, err := Services(context.Background(), cfg, Logger(), store.WarmConnection())
	if err != nil {
		config.Exit(err)
	}
	return svcs
}
