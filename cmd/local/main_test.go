package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/wxsession/wxsession/internal/openapitest"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// startLocal runs the local server's handler, as `make run` does, on a free
// port with the emulator and the memory store.
func startLocal(t *testing.T, env map[string]string) (base string, logs *bytes.Buffer) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base = "http://" + srv.Listener.Addr().String()
	cfg, err := config.LoadLocal(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	logs = &bytes.Buffer{}
	h, cfg, err := newServer(context.Background(), cfg, base, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIBase != base+"/emulator" || cfg.AppID != demoAppID {
		t.Fatalf("emulator not wired: %+v", cfg)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return base, logs
}

func call(t *testing.T, method, url, auth string, body any, wantStatus int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	// Every answer of the product is checked against docs/openapi.yaml.
	resp, err := (&http.Client{Transport: openapitest.Transport(t, nil)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: got %d %s, want %d", method, url, resp.StatusCode, raw, wantStatus)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %q is not JSON", method, url, raw)
		}
	}
	return out
}

// storeEnvs returns the configurations to run the local server with: the
// memory store always, DynamoDB Local and redis-server when make test
// started them (always, with CI set: see storetest.LookupServer).
func storeEnvs(t *testing.T) map[string]map[string]string {
	envs := map[string]map[string]string{"memory": {}}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	if u, ok := storetest.LookupServer(t, "WXSESSION_DYNAMODB_URL"); ok {
		envs["dynamodb"] = map[string]string{"SESSION_STORE": "dynamodb", "SESSION_TABLE": "wxsession-local-" + suffix}
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", u)
		t.Setenv("AWS_REGION", "us-east-1")
		t.Setenv("AWS_ACCESS_KEY_ID", "local")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	} else {
		t.Log("DynamoDB flow left out: set WXSESSION_DYNAMODB_URL (make test starts DynamoDB Local) to run it")
	}
	if u, ok := storetest.LookupServer(t, "WXSESSION_REDIS_URL"); ok {
		envs["redis"] = map[string]string{"SESSION_STORE": "redis", "REDIS_URL": u}
	} else {
		t.Log("Redis flow left out: set WXSESSION_REDIS_URL (make test starts redis-server) to run it")
	}
	return envs
}

func TestLocalServerFullFlow(t *testing.T) {
	for name, env := range storeEnvs(t) {
		t.Run(name, func(t *testing.T) { testFullFlow(t, env) })
	}
}

func testFullFlow(t *testing.T, env map[string]string) {
	base, logs := startLocal(t, env)

	code := call(t, "POST", base+"/emulator/wx.login?user=alice", "", nil, 200)["code"].(string)
	login := call(t, "POST", base+"/login", "", map[string]string{"code": code}, 200)
	skey, openID := login["skey"].(string), login["openid"].(string)
	if again := call(t, "POST", base+"/login", "", map[string]string{"code": code}, 200); again["skey"] != skey {
		t.Fatalf("a repeated code gave another session")
	}
	if stats := call(t, "GET", base+"/emulator/stats", "", nil, 200); stats["jscode2session_calls"] != float64(1) {
		t.Fatalf("WeChat calls: %v, want 1", stats)
	}

	v := call(t, "GET", base+"/validate", skey, nil, 200)
	if v["openid"] != openID {
		t.Fatalf("validate: %v", v)
	}
	enc := call(t, "POST", base+"/emulator/encrypt", "", map[string]string{"openid": openID}, 200)
	d := call(t, "POST", base+"/decrypt", skey, enc, 200)
	if _, ok := d["data"].(map[string]any)["stepInfoList"]; !ok {
		t.Fatalf("decrypt: %v", d)
	}

	// Logging in again replaces the session_key: data from before is stale.
	code2 := call(t, "POST", base+"/emulator/wx.login?user=alice", "", nil, 200)["code"].(string)
	skey2 := call(t, "POST", base+"/login", "", map[string]string{"code": code2}, 200)["skey"].(string)
	if e := call(t, "POST", base+"/decrypt", skey2, enc, 409); e["error"] != "stale_session_key" {
		t.Fatalf("decrypt with old data: %v", e)
	}

	call(t, "POST", base+"/logout", skey, nil, 204)
	if e := call(t, "GET", base+"/validate", skey, nil, 401); e["error"] != "session_expired" {
		t.Fatalf("validate after logout: %v", e)
	}
	call(t, "GET", base+"/validate", skey2, nil, 200)

	for _, secret := range []string{skey, skey2, code, emulatorSecret} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a secret reached the log")
		}
	}
}

func TestLocalServerFaults(t *testing.T) {
	base, _ := startLocal(t, nil)
	call(t, "POST", base+"/emulator/fault", "", map[string]any{"mode": "errcode", "errcode": 45011, "times": 1}, 204)
	code := call(t, "POST", base+"/emulator/wx.login", "", nil, 200)["code"].(string)
	if e := call(t, "POST", base+"/login", "", map[string]string{"code": code}, 429); e["error"] != "rate_limited" {
		t.Fatalf("got %v", e)
	}
	// The fault was for one call; the code was not spent.
	call(t, "POST", base+"/login", "", map[string]string{"code": code}, 200)

	// A slow WeChat within the attempt timeout still logs in.
	call(t, "POST", base+"/emulator/fault", "", map[string]any{"mode": "slow", "delay": "50ms"}, 204)
	call(t, "POST", base+"/login", "", map[string]string{"code": call(t, "POST", base+"/emulator/wx.login", "", nil, 200)["code"].(string)}, 200)
	call(t, "DELETE", base+"/emulator/fault", "", nil, 204)
	if e := call(t, "POST", base+"/emulator/fault", "", map[string]any{"mode": "nonsense"}, 400); e["error"] != "invalid_request" {
		t.Fatalf("got %v", e)
	}
}
