package store

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/dynamo"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/store/redis"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var awsEnv = map[string]string{"AWS_REGION": "ap-east-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"}

func with(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config.Config
		env     map[string]string
		want    func(session.Store) bool
		wantVar string // the variable a *config.Error must name; "" for success
	}{
		{"memory", config.Config{Store: config.StoreMemory}, nil, isType[*memory.Store], ""},
		{"dynamodb", config.Config{Store: config.StoreDynamoDB, Table: "t"}, awsEnv, isType[*dynamo.Store], ""},
		{"dynamodb local without region", config.Config{Store: config.StoreDynamoDB, Table: "t"},
			with(awsEnv, "AWS_REGION", "", "AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"), isType[*dynamo.Store], ""},
		{"dynamodb without region", config.Config{Store: config.StoreDynamoDB, Table: "t"}, with(awsEnv, "AWS_REGION", ""), nil, "AWS_REGION"},
		{"dynamodb without credentials", config.Config{Store: config.StoreDynamoDB, Table: "t"}, with(awsEnv, "AWS_SECRET_ACCESS_KEY", ""), nil, "AWS_ACCESS_KEY_ID"},
		{"dynamodb with a bad endpoint", config.Config{Store: config.StoreDynamoDB, Table: "t"},
			with(awsEnv, "AWS_ENDPOINT_URL_DYNAMODB", "localhost:8000"), nil, "AWS_ENDPOINT_URL_DYNAMODB"},
		{"redis", config.Config{Store: config.StoreRedis, RedisURL: "redis://127.0.0.1:1/0"}, nil, isType[*redis.Store], ""},
		{"redis with a bad URL", config.Config{Store: config.StoreRedis, RedisURL: "redis://u:hunter2@127.0.0.1:x/0"}, nil, nil, "REDIS_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.cfg, nil, withGetenv(envOf(tt.env)))
			if tt.wantVar != "" {
				var cerr *config.Error
				if !errors.As(err, &cerr) || cerr.Var != tt.wantVar {
					t.Fatalf("Open: got %v, want a configuration error naming %s", err, tt.wantVar)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("Open: the error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !tt.want(s) {
				t.Fatalf("Open: got a %T", s)
			}
			if c, ok := s.(io.Closer); ok {
				_ = c.Close()
			}
		})
	}
}

func isType[T session.Store](s session.Store) bool { _, ok := s.(T); return ok }

// TestOpenServers opens each store from its configuration against the test
// servers, as a function's main would, and round-trips a session.
func TestOpenServers(t *testing.T) {
	tests := []struct {
		name   string
		envVar string
		cfg    func(url string) (config.Config, map[string]string)
	}{
		{"dynamodb", "WXSESSION_DYNAMODB_URL", func(u string) (config.Config, map[string]string) {
			table := "wxsession-open-" + session.NewSkey()[:8]
			return config.Config{Store: config.StoreDynamoDB, Table: table},
				map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": u, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
		}},
		{"redis", "WXSESSION_REDIS_URL", func(u string) (config.Config, map[string]string) {
			return config.Config{Store: config.StoreRedis, RedisURL: u}, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := storetest.ServerURL(t, tt.envVar)
			cfg, env := tt.cfg(u)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s, err := Open(ctx, cfg, nil, CreateMissingTable(), withGetenv(envOf(env)))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if c, ok := s.(io.Closer); ok {
				t.Cleanup(func() { c.Close() })
			}
			id := session.SkeyHash(session.NewSkey())
			now := time.Now()
			if err := s.PutSession(ctx, id, session.Session{OpenID: "o", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
				t.Fatalf("PutSession: %v", err)
			}
			if got, err := s.GetSession(ctx, id); err != nil || got.OpenID != "o" {
				t.Fatalf("GetSession: got %+v, %v", got, err)
			}
			if err := s.DeleteSession(ctx, id); err != nil {
				t.Fatalf("DeleteSession: %v", err)
			}
		})
	}
}
