// Package store opens the session store the configuration names: memory,
// DynamoDB or Redis. It is the one place that knows all three, so a
// function's main only calls Open.
//
// Every store is built in by default. A release build may leave out the one
// its cloud does not use, which keeps that client library out of the binary
// (smaller, and less to load at a cold start): -tags wxsession_nodynamodb
// leaves out DynamoDB, -tags wxsession_noredis Redis. The memory store is
// always there. A binary asked for a store it was built without stops at
// start-up with one line naming SESSION_STORE.
package store

import (
	"context"
	"os"
	"time"

	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/memory"
)

// Option adjusts Open.
type Option func(*options)

type options struct {
	getenv      func(string) string
	createTable bool
	warm        bool
}

// CreateMissingTable makes Open create the DynamoDB table, with TTL on, when it
// does not exist yet. The local server uses it; deployed functions get their
// table from the SAM template and must not pay a table lookup at cold start.
func CreateMissingTable() Option { return func(o *options) { o.createTable = true } }

// WarmConnection makes Open start, in the background, a connection to
// DynamoDB's endpoint, so a cold start's first request does not wait for the
// handshakes (see dynamo.Warm). A function's main uses it; it costs no store
// operation and never delays start-up. (The Redis client dials on its first
// command, as before.)
func WarmConnection() Option { return func(o *options) { o.warm = true } }

// withGetenv makes Open read the AWS variables through getenv; tests use it.
func withGetenv(getenv func(string) string) Option { return func(o *options) { o.getenv = getenv } }

// Open returns the store cfg.Store names, reading the time from now (time.Now
// if nil). cfg is validated (config.Load): Open trusts it. Build it once per process, before serving: it makes no network
// call (unless CreateMissingTable is given), and its clients reuse their
// connections across invocations.
//
// For dynamodb it reads the standard AWS variables, which Lambda sets:
// AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, and AWS_ENDPOINT_URL_DYNAMODB (or
// AWS_ENDPOINT_URL) for DynamoDB Local. For redis it dials cfg.RedisURL
// lazily.
//
// A bad or missing AWS setting is a *config.Error naming the variable. The store
// returned for redis holds connections and implements io.Closer; a
// long-running process may close it on shutdown, a function need not.
func Open(ctx context.Context, cfg config.Config, now func() time.Time, opts ...Option) (session.Store, error) {
	o := options{getenv: os.Getenv}
	for _, opt := range opts {
		opt(&o)
	}
	if now == nil {
		now = time.Now
	}
	switch cfg.Store {
	case config.StoreDynamoDB:
		return openDynamo(ctx, cfg, now, o)
	case config.StoreRedis:
		return openRedis(cfg, now)
	}
	return memory.New(now), nil
}
