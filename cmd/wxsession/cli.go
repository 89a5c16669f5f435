package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the store failed or refused
	exitUsage   = 2 // bad arguments or configuration
)

// timeout bounds one command: a few store calls, or creating a table.
const timeout = 2 * time.Minute

const usage = `usage: wxsession [--appid APPID] [--json] <command>

commands:
  sessions <openid>   list the user's live sessions (created, expires)
  revoke <openid>     end every session of the user, on every device
  table create        create the DynamoDB table SESSION_TABLE, TTL on (console deployments)
  check               check the configuration and that the session store answers

It reads the functions' environment: WX_APPID, SESSION_STORE (dynamodb or
redis), SESSION_TABLE or REDIS_URL, SESSION_TTL, SESSION_MAX_AGE,
SESSION_SEAL_KEY, and for DynamoDB the AWS_* variables. WX_SECRET is not
needed.
`

// cli is one run of the command.
type cli struct {
	appID  string
	json   bool
	stdout io.Writer
	stderr io.Writer
}

// run runs the command line args with the environment lookup reads, and
// returns the exit status.
func run(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("wxsession", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.appID, "appid", "", "the app (must be WX_APPID)")
	fs.BoolVar(&c.json, "json", false, "print JSON")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		_, _ = fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err != nil {
		return c.usageError(err.Error())
	}
	if len(pos) == 0 {
		return c.usageError("no command given")
	}
	cmd, rest := pos[0], pos[1:]
	var do func(ctx context.Context, cfg config.Config) int
	switch {
	case cmd == "sessions" && len(rest) == 1 && rest[0] != "":
		do = func(ctx context.Context, cfg config.Config) int { return c.sessions(ctx, cfg, rest[0]) }
	case cmd == "revoke" && len(rest) == 1 && rest[0] != "":
		do = func(ctx context.Context, cfg config.Config) int { return c.revoke(ctx, cfg, rest[0]) }
	case cmd == "table" && len(rest) == 1 && rest[0] == "create":
		do = c.tableCreate
	case cmd == "check" && len(rest) == 0:
		do = c.check
	case cmd == "sessions" || cmd == "revoke":
		return c.usageError(cmd + " takes one argument: the user's openid")
	case cmd == "table":
		return c.usageError(`table takes one argument: "create"`)
	case cmd == "check":
		return c.usageError("check takes no argument")
	default:
		return c.usageError(fmt.Sprintf("unknown command %q", cmd))
	}

	cfg, err := c.config(lookup, cmd == "table")
	if err != nil {
		return c.configError(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return do(ctx, cfg)
}

// parseInterleaved parses flags wherever they stand among the positional
// arguments ("sessions o123 --json" as well as "--json sessions o123").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// config loads the functions' configuration and checks what the command
// needs: a shared store (memory is this process's own and holds nothing),
// WX_APPID for the commands about users, and --appid naming that app.
func (c *cli) config(lookup func(string) (string, bool), tableOnly bool) (config.Config, error) {
	cfg, err := config.Load(lookup)
	if err != nil {
		return config.Config{}, err
	}
	if tableOnly {
		if cfg.Store != config.StoreDynamoDB {
			return config.Config{}, &config.Error{Var: "SESSION_STORE", Reason: "table create needs SESSION_STORE=dynamodb (and SESSION_TABLE)"}
		}
		return cfg, nil
	}
	if cfg.Store == config.StoreMemory {
		return config.Config{}, &config.Error{Var: "SESSION_STORE", Reason: "memory is this process's own store and holds no sessions: use dynamodb or redis, as the functions do"}
	}
	if err := config.RequireAppID(cfg); err != nil {
		return config.Config{}, err
	}
	if c.appID == "" {
		if len(cfg.AppList()) > 1 {
			return config.Config{}, &config.Error{Var: "WX_APPID", Reason: "lists several apps: pick one with --appid"}
		}
		return cfg, nil
	}
	app, ok := cfg.App(c.appID)
	if !ok {
		return config.Config{}, &config.Error{Var: "WX_APPID", Reason: fmt.Sprintf("--appid %q is not a configured app", c.appID)}
	}
	cfg.AppID, cfg.Secret = app.ID, app.Secret
	return cfg, nil
}

// service opens the store cfg names and the session service over it. It
// never calls WeChat, so it has no WeChat client.
func (c *cli) service(ctx context.Context, cfg config.Config) (*session.Service, int) {
	st, err := store.Open(ctx, cfg, time.Now)
	if err != nil {
		return nil, c.configError(err)
	}
	svc, err := boot.NewService(cfg, st, nil, session.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, c.configError(err)
	}
	return svc, exitOK
}

type sessionOut struct {
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

func (c *cli) sessions(ctx context.Context, cfg config.Config, openID string) int {
	svc, code := c.service(ctx, cfg)
	if code != exitOK {
		return code
	}
	list, err := svc.Sessions(ctx, openID)
	if err != nil {
		return c.failure(err)
	}
	out := make([]sessionOut, len(list))
	for i, s := range list {
		out[i] = sessionOut{Created: s.CreatedAt.UTC().Truncate(time.Second), Expires: s.ExpiresAt.UTC().Truncate(time.Second)}
	}
	if c.json {
		return c.printJSON(map[string]any{"appid": cfg.AppID, "openid": openID, "sessions": out})
	}
	_, _ = fmt.Fprintf(c.stdout, "%d live session(s) of %s (app %s)\n", len(out), openID, cfg.AppID)
	if len(out) > 0 {
		_, _ = fmt.Fprintf(c.stdout, "%-21s %s\n", "CREATED", "EXPIRES")
	}
	for _, s := range out {
		_, _ = fmt.Fprintf(c.stdout, "%-21s %s\n", s.Created.Format(time.RFC3339), s.Expires.Format(time.RFC3339))
	}
	return exitOK
}

func (c *cli) revoke(ctx context.Context, cfg config.Config, openID string) int {
	svc, code := c.service(ctx, cfg)
	if code != exitOK {
		return code
	}
	n, err := svc.Revoke(ctx, openID)
	if err != nil {
		return c.failure(err)
	}
	if c.json {
		return c.printJSON(map[string]any{"appid": cfg.AppID, "openid": openID, "ended": n})
	}
	_, _ = fmt.Fprintf(c.stdout, "ended every session of %s (app %s): %d listed\n", openID, cfg.AppID, n)
	return exitOK
}

func (c *cli) tableCreate(ctx context.Context, cfg config.Config) int {
	if _, err := store.Open(ctx, cfg, time.Now, store.CreateMissingTable()); err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return c.configError(err)
		}
		return c.failure(err)
	}
	if c.json {
		return c.printJSON(map[string]any{"table": cfg.Table, "ttl_attribute": "expires_at", "status": "ACTIVE"})
	}
	_, _ = fmt.Fprintf(c.stdout, "table %s is ACTIVE, TTL on expires_at\n", cfg.Table)
	return exitOK
}

// check reads a session that cannot exist: "not found" is the store
// answering; anything else is the store failing (unreachable, no table, no
// permission).
func (c *cli) check(ctx context.Context, cfg config.Config) int {
	st, err := store.Open(ctx, cfg, time.Now)
	if err != nil {
		return c.configError(err)
	}
	if _, err := st.GetSession(ctx, session.SkeyHash(session.NewSkey())); err != nil && !errors.Is(err, session.ErrNotFound) {
		return c.failure(fmt.Errorf("the %s store does not answer: %w", cfg.Store, err))
	}
	if c.json {
		return c.printJSON(map[string]any{"ok": true, "appid": cfg.AppID, "store": cfg.Store})
	}
	_, _ = fmt.Fprintf(c.stdout, "ok: configuration valid, the %s store answers (app %s)\n", cfg.Store, cfg.AppID)
	return exitOK
}

func (c *cli) printJSON(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return c.failure(err)
	}
	_, _ = fmt.Fprintf(c.stdout, "%s\n", b)
	return exitOK
}

// report prints an error: one line on stderr, and with --json also a JSON
// object on stdout for scripts.
func (c *cli) report(kind string, err error) {
	_, _ = fmt.Fprintf(c.stderr, "wxsession: %s: %v\n", kind, err)
	if c.json {
		b, _ := json.Marshal(map[string]any{"ok": false, "error": kind, "message": err.Error()})
		_, _ = fmt.Fprintf(c.stdout, "%s\n", b)
	}
}

func (c *cli) usageError(msg string) int {
	c.report("usage", errors.New(msg))
	_, _ = fmt.Fprint(c.stderr, usage)
	return exitUsage
}

func (c *cli) configError(err error) int {
	c.report("configuration", err)
	return exitUsage
}

func (c *cli) failure(err error) int {
	c.report("failed", err)
	return exitFailure
}
