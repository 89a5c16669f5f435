package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

const testAppID = "wx00000000000000c1"

// binary builds the command once per test binary run.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wxsession")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type result struct {
	code           int
	stdout, stderr string
}

// wxsession runs the built command with exactly env (plus PATH).
func wxsession(t *testing.T, bin string, env map[string]string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func (r result) want(t *testing.T, what string, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, r.code, code, r.stdout, r.stderr)
	}
	return r
}

// exchanger is a fake WeChat: a code "user/…" logs that user in.
type exchanger struct{}

func (exchanger) Code2Session(_ context.Context, code string) (session.WeChatSession, error) {
	user, _, _ := strings.Cut(code, "/")
	return session.WeChatSession{OpenID: user, SessionKey: "c2Vzc2lvbmtleTEyMzQ1Ng=="}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestCommand runs the built command against DynamoDB Local and
// redis-server: the store the functions use, configured the same way. A
// function instance (a session.Service over its own store client) logs users
// in; the command lists and revokes them from outside.
func TestCommand(t *testing.T) {
	bin := binary(t)
	stores := []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"dynamodb", func(t *testing.T) map[string]string {
			url := storetest.ServerURL(t, "WXSESSION_DYNAMODB_URL")
			return map[string]string{
				"SESSION_STORE": "dynamodb", "SESSION_TABLE": "wxsession-cli-" + randomHex(6),
				"AWS_ENDPOINT_URL_DYNAMODB": url, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
			}
		}},
		{"redis", func(t *testing.T) map[string]string {
			return map[string]string{"SESSION_STORE": "redis", "REDIS_URL": storetest.ServerURL(t, "WXSESSION_REDIS_URL")}
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			env := st.env(t)
			env["WX_APPID"] = testAppID
			env["SESSION_SEAL_KEY"] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
			testCommand(t, bin, st.name, env)
		})
	}
}

func testCommand(t *testing.T, bin, storeName string, env map[string]string) {
	if storeName == "dynamodb" {
		r := wxsession(t, bin, env, "table", "create").want(t, "table create", 0)
		if !strings.Contains(r.stdout, env["SESSION_TABLE"]) || !strings.Contains(r.stdout, "expires_at") {
			t.Fatalf("table create: got %q, want the table and its TTL attribute named", r.stdout)
		}
		r = wxsession(t, bin, env, "--json", "table", "create").want(t, "table create again", 0)
		var tbl struct {
			Table        string `json:"table"`
			TTLAttribute string `json:"ttl_attribute"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &tbl); err != nil || tbl.Table != env["SESSION_TABLE"] || tbl.TTLAttribute != "expires_at" {
			t.Fatalf("table create --json: got %q (%v)", r.stdout, err)
		}
	} else {
		wxsession(t, bin, env, "table", "create").want(t, "table create on redis", 2)
	}
	r := wxsession(t, bin, env, "check").want(t, "check", 0)
	if !strings.Contains(r.stdout, "ok") {
		t.Fatalf("check: got %q", r.stdout)
	}

	// A function instance logs users in, over its own store client.
	ctx := context.Background()
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, v) // store.Open reads the AWS variables from the process
		}
	}
	s, err := store.Open(ctx, cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	svc := session.NewService(session.Settings{AppID: testAppID, TTL: cfg.TTL, MaxAge: cfg.MaxAge, ClaimPatience: 5 * time.Second}, s, exchanger{})
	alice, bob := "o-alice-"+randomHex(4), "o-bob-"+randomHex(4)
	login := func(user string) string {
		l, err := svc.Login(ctx, user+"/"+randomHex(8))
		if err != nil {
			t.Fatalf("Login: %v", err)
		}
		return l.Skey
	}
	aliceSkeys := []string{login(alice), login(alice)}
	bobSkey := login(bob)

	r = wxsession(t, bin, env, "sessions", alice, "--json").want(t, "sessions --json", 0)
	jsonOut := r.stdout
	var list struct {
		AppID    string `json:"appid"`
		OpenID   string `json:"openid"`
		Sessions []struct {
			Created, Expires time.Time
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("sessions --json: %v in %q", err, r.stdout)
	}
	if list.AppID != testAppID || list.OpenID != alice || len(list.Sessions) != 2 {
		t.Fatalf("sessions --json: got %+v, want alice's 2 sessions", list)
	}
	for _, s := range list.Sessions {
		if s.Created.IsZero() || !s.Expires.After(time.Now()) || s.Expires.Sub(s.Created) > cfg.TTL+time.Second {
			t.Fatalf("sessions --json: got %+v, want created now and expiring within SESSION_TTL", s)
		}
	}
	r = wxsession(t, bin, env, "--appid", testAppID, "sessions", alice).want(t, "sessions", 0)
	if !strings.Contains(r.stdout, "2 live session(s)") || strings.Count(r.stdout, "\n") != 4 {
		t.Fatalf("sessions: got %q, want a count, a header and 2 lines", r.stdout)
	}
	for _, k := range aliceSkeys {
		for _, out := range []string{r.stdout, r.stderr, jsonOut} {
			if strings.Contains(out, k) || strings.Contains(out, session.SkeyHash(k)) {
				t.Fatalf("sessions shows an skey or its hash: %q", out)
			}
		}
	}

	r = wxsession(t, bin, env, "revoke", alice, "--json").want(t, "revoke", 0)
	var rev struct{ Ended int }
	if err := json.Unmarshal([]byte(r.stdout), &rev); err != nil || rev.Ended != 2 {
		t.Fatalf("revoke --json: got %q (%v), want ended 2", r.stdout, err)
	}
	for i, k := range aliceSkeys {
		if _, err := svc.Validate(ctx, k); apperr.CodeOf(err) != apperr.SessionExpired {
			t.Fatalf("alice's session %d after revoke: %v, want session_expired", i, err)
		}
	}
	if _, err := svc.Validate(ctx, bobSkey); err != nil {
		t.Fatalf("bob's session after alice's revoke: %v", err)
	}
	r = wxsession(t, bin, env, "sessions", alice).want(t, "sessions after revoke", 0)
	if !strings.Contains(r.stdout, "0 live session(s)") {
		t.Fatalf("sessions after revoke: got %q", r.stdout)
	}
	wxsession(t, bin, env, "revoke", "o-nobody").want(t, "revoke of an unknown user", 0)

	// Usage and configuration errors: 2.
	with := func(k, v string) map[string]string {
		e := map[string]string{}
		for kk, vv := range env {
			e[kk] = vv
		}
		if v == "" {
			delete(e, k)
		} else {
			e[k] = v
		}
		return e
	}
	usage := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"no command", env, nil},
		{"unknown command", env, []string{"frobnicate"}},
		{"sessions without openid", env, []string{"sessions"}},
		{"revoke with two", env, []string{"revoke", "a", "b"}},
		{"table without create", env, []string{"table"}},
		{"unknown flag", env, []string{"--frob", "check"}},
		{"another app", env, []string{"--appid", "wxsomeoneelse", "check"}},
		{"no SESSION_STORE", with("SESSION_STORE", ""), []string{"check"}},
		{"memory store", with("SESSION_STORE", "memory"), []string{"sessions", alice}},
		{"no WX_APPID", with("WX_APPID", ""), []string{"revoke", alice}},
		{"bad seal key", with("SESSION_SEAL_KEY", "short"), []string{"check"}},
	}
	for _, u := range usage {
		r := wxsession(t, bin, u.env, u.args...).want(t, u.name, 2)
		if r.stderr == "" || strings.Count(strings.TrimSpace(r.stderr), "\n") > 20 {
			t.Fatalf("%s: stderr %q, want one line saying why (and usage)", u.name, r.stderr)
		}
	}
	r = wxsession(t, bin, with("SESSION_STORE", ""), "--json", "check").want(t, "--json config error", 2)
	if !strings.Contains(r.stdout, `"ok":false`) || !strings.Contains(r.stdout, "SESSION_STORE") {
		t.Fatalf("check --json with a config error: stdout %q, want a JSON error naming SESSION_STORE", r.stdout)
	}

	// The store failing: 1.
	var broken map[string]string
	if storeName == "dynamodb" {
		broken = with("SESSION_TABLE", "wxsession-cli-missing-"+randomHex(4))
	} else {
		broken = with("REDIS_URL", "redis://127.0.0.1:1/0")
	}
	wxsession(t, bin, broken, "check").want(t, "check with a store that fails", 1)
	wxsession(t, bin, broken, "revoke", alice).want(t, "revoke with a store that fails", 1)
}
