// Package store opens the session store the configuration names: memory,
// DynamoDB or Redis. It is the one place that knows all three, so a
// function's main only calls Open.
package store

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/dynamo"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/store/redis"
)

// Option adjusts Open.
type Option func(*options)

type options struct {
	getenv      func(string) string
	createTable bool
}

// CreateMissingTable makes Open create the DynamoDB table, with TTL on, when it
// does not exist yet. The local server uses it; deployed functions get their
// table from the SAM template and must not pay a table lookup at cold start.
func CreateMissingTable() Option { return func(o *options) { o.createTable = true } }

// withGetenv makes Open read the AWS variables through getenv; tests use it.
func withGetenv(getenv func(string) string) Option { return func(o *options) { o.getenv = getenv } }

// Open returns the store cfg.Store names, reading the time from now (time.Now
// if nil). Build it once per process, before serving: it makes no network
// call (unless CreateMissingTable is given), and its clients reuse their
// connections across invocations.
//
// For dynamodb it reads the standard AWS variables, which Lambda sets:
// AWS_REGION (or AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, and AWS_ENDPOINT_URL_DYNAMODB (or
// AWS_ENDPOINT_URL) for DynamoDB Local. For redis it dials cfg.RedisURL
// lazily.
//
// A bad or missing setting is a *config.Error naming the variable. The store
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
	case config.StoreMemory, "":
		return memory.New(now), nil
	case config.StoreDynamoDB:
		return openDynamo(ctx, cfg, now, o)
	case config.StoreRedis:
		if cfg.RedisURL == "" {
			return nil, &config.Error{Var: "REDIS_URL", Reason: "required when SESSION_STORE=redis"}
		}
		client, err := redis.NewClient(cfg.RedisURL)
		if err != nil {
			return nil, &config.Error{Var: "REDIS_URL", Reason: err.Error()}
		}
		return redis.New(client, now), nil
	default:
		return nil, &config.Error{Var: "SESSION_STORE", Reason: fmt.Sprintf("%q is not one of memory, dynamodb, redis", cfg.Store)}
	}
}

func openDynamo(ctx context.Context, cfg config.Config, now func() time.Time, o options) (session.Store, error) {
	if cfg.Table == "" {
		return nil, &config.Error{Var: "SESSION_TABLE", Reason: "required when SESSION_STORE=dynamodb"}
	}
	copts, err := dynamoClientOptions(o.getenv)
	if err != nil {
		return nil, err
	}
	client := dynamo.NewClient(copts)
	if o.createTable {
		if err := dynamo.EnsureTable(ctx, client, cfg.Table); err != nil {
			return nil, fmt.Errorf("SESSION_TABLE: %w", err)
		}
	}
	return dynamo.New(client, cfg.Table, now), nil
}

// dynamoClientOptions reads what the DynamoDB client needs from the
// environment, as the SDK's own config loader would for a Lambda function,
// without its cost (see dynamo.NewClient).
func dynamoClientOptions(getenv func(string) string) (dynamo.ClientOptions, error) {
	var endpoint, endpointVar string
	if getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") != "true" {
		for _, v := range []string{"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"} {
			if endpoint = getenv(v); endpoint != "" {
				endpointVar = v
				break
			}
		}
	}
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return dynamo.ClientOptions{}, &config.Error{Var: endpointVar, Reason: fmt.Sprintf("%q is not an http(s) URL", endpoint)}
		}
	}

	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		if endpoint == "" {
			return dynamo.ClientOptions{}, &config.Error{Var: "AWS_REGION", Reason: "required when SESSION_STORE=dynamodb (Lambda sets it)"}
		}
		region = "us-east-1" // DynamoDB Local ignores it, but requests are signed with one
	}

	creds := aws.Credentials{
		AccessKeyID:     getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    getenv("AWS_SESSION_TOKEN"),
		Source:          "environment",
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return dynamo.ClientOptions{}, &config.Error{
			Var:    "AWS_ACCESS_KEY_ID",
			Reason: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are required when SESSION_STORE=dynamodb (Lambda sets them from the function's role; any value does for DynamoDB Local)",
		}
	}
	return dynamo.ClientOptions{Region: region, Endpoint: endpoint, Credentials: creds}, nil
}
