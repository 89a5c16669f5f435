package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/faulty"
	"github.com/wxsession/wxsession/shared/wechat"
)

// MaxHTTPFailTime bounds how long a request may take to answer 503
// store_unavailable while the store's server is down or hung. The stores give
// up on a call after about 1.5 s; the bound is generous so that a loaded test
// machine does not make it flaky: what it catches is a request that waits
// for the server to come back, or forever.
const MaxHTTPFailTime = 3 * time.Second

// RunHTTPOutage checks a store's outage end to end, through the HTTP handler
// on a real socket, as a client sees it: while the store's server is down or
// hung, every route answers 503 store_unavailable within MaxHTTPFailTime
// (never 401 session_expired, which would send clients to log in again, and
// never with the store's error in the body); no failed login leaves a session
// behind; and once the server is back, the same handler (no restart) serves
// the session that existed before, and a login code refused during the
// outage, which WeChat never saw, still logs in. open is as for RunOutage.
func RunHTTPOutage(t *testing.T, target string, open func(t *testing.T, addr string, now func() time.Time) session.Store) {
	t.Helper()
	const appID, secret = "wxoutage", "outage-secret"
	p := NewProxy(t, target)
	st := faulty.New(open(t, p.Addr(), time.Now)) // no fault: it records session writes
	emu := emulator.New(appID, secret)
	wx := httptest.NewServer(emu)
	t.Cleanup(wx.Close)
	set := session.Settings{AppID: appID, TTL: time.Hour, MaxAge: 24 * time.Hour, ClaimPatience: 8 * time.Second}
	svc := session.NewService(set, st, wechatClient{wechat.NewClient(wx.URL, appID, secret, nil)})
	srv := httptest.NewServer(api.All(svc, api.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil)))))
	t.Cleanup(srv.Close)
	c := &httpClient{t: t, base: srv.URL}

	l := c.login(emu.Code("alice"))
	if l.status != http.StatusOK {
		t.Fatalf("login before the outage: got %d %s", l.status, l.raw)
	}
	skey := l.body["skey"].(string)
	openID := l.body["openid"].(string)
	decrypt := func() (int, string) {
		enc, err := emu.Encrypt(openID, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(enc)
		r := c.do("POST", "/decrypt", skey, string(b))
		return r.status, r.raw
	}

	for _, o := range []struct {
		name  string
		begin func()
	}{{"server down", p.Down}, {"server hung", p.Hang}} {
		t.Run(o.name, func(t *testing.T) {
			c.t = t
			code := emu.Code("bob")
			calls := emu.Calls()
			o.begin()
			for _, rq := range []struct{ method, path, skey, body string }{
				{"POST", "/login", "", `{"code":"` + code + `"}`},
				{"GET", "/validate", skey, ""},
				{"POST", "/decrypt", skey, `{"encryptedData":"AAAAAAAAAAAAAAAAAAAAAA==","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`},
				{"POST", "/logout", skey, ""},
			} {
				start := time.Now()
				r := c.do(rq.method, rq.path, rq.skey, rq.body)
				took := time.Since(start)
				switch {
				case r.status != http.StatusServiceUnavailable || r.body["error"] != "store_unavailable":
					t.Errorf("%s %s: got %d %s, want 503 store_unavailable", rq.method, rq.path, r.status, r.raw)
				case took > MaxHTTPFailTime:
					t.Errorf("%s %s: answered 503 after %v, want within %v", rq.method, rq.path, took.Round(time.Millisecond), MaxHTTPFailTime)
				case strings.Contains(r.raw, "127.0.0.1") || strings.Contains(r.raw, "timeout") || strings.Contains(r.raw, "refused"):
					t.Errorf("%s %s: the answer carries the store's error: %s", rq.method, rq.path, r.raw)
				default:
					t.Logf("%s %s: 503 store_unavailable after %v", rq.method, rq.path, took.Round(time.Millisecond))
				}
			}
			if emu.Calls() != calls {
				t.Errorf("WeChat was called for a login whose code the store could not claim")
			}

			p.Up()
			start := time.Now()
			for {
				r := c.do("GET", "/validate", skey, "")
				if r.status == http.StatusOK && r.body["openid"] == openID {
					break
				}
				if time.Since(start) > recoverWithin {
					t.Fatalf("validate still answers %d %s %v after the server came back", r.status, r.raw, recoverWithin)
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("the session answers again %v after the server came back", time.Since(start).Round(time.Millisecond))
			if status, raw := decrypt(); status != http.StatusOK {
				t.Errorf("decrypt after recovery: got %d %s, want 200", status, raw)
			}
			if r := c.login(code); r.status != http.StatusOK {
				t.Errorf("the code refused during the outage, after recovery: got %d %s, want 200", r.status, r.raw)
			}
			assertNoHalfWrittenSession(t, st)
		})
	}

	// The server goes away while a login is between WeChat and its writes:
	// the login answers 503, and leaves no session behind.
	t.Run("server down mid-login", func(t *testing.T) {
		c.t = t
		written, _ := st.SessionWrites()
		emu.SetFault(&emulator.Fault{Mode: emulator.FaultSlow, Delay: 300 * time.Millisecond, Times: 1})
		calls := emu.Calls()
		done := make(chan httpAnswer, 1)
		code := emu.Code("carol")
		go func() {
			a, err := c.try("POST", "/login", "", `{"code":"`+code+`"}`)
			if err != nil {
				a.raw = err.Error()
			}
			done <- a
		}()
		for emu.Calls() == calls {
			time.Sleep(5 * time.Millisecond)
		}
		p.Down()
		start := time.Now()
		r := <-done
		if r.status != http.StatusServiceUnavailable || r.body["error"] != "store_unavailable" {
			t.Errorf("login cut off from the store: got %d %s, want 503 store_unavailable", r.status, r.raw)
		}
		if took := time.Since(start); took > MaxHTTPFailTime {
			t.Errorf("login answered %v after the outage began, want within %v", took.Round(time.Millisecond), MaxHTTPFailTime)
		}
		p.Up()
		if now, _ := st.SessionWrites(); len(now) != len(written) {
			t.Errorf("a session was written by a login that answered 503")
		}
		assertNoHalfWrittenSession(t, st)
	})
	c.t = t
	if r := c.do("POST", "/logout", skey, ""); r.status != http.StatusNoContent {
		t.Fatalf("logout after the outages: got %d %s", r.status, r.raw)
	}
	if r := c.do("GET", "/validate", skey, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("validate after logout: got %d %s", r.status, r.raw)
	}
}

// assertNoHalfWrittenSession checks that no session write that failed left
// a session in the store.
func assertNoHalfWrittenSession(t *testing.T, st *faulty.Store) {
	t.Helper()
	_, failed := st.SessionWrites()
	for _, id := range failed {
		if _, err := st.GetSession(context.Background(), id); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("a session write that failed left a session behind (GetSession: %v)", err)
		}
	}
}

// httpClient sends JSON requests to a handler on a real socket.
type httpClient struct {
	t    *testing.T
	base string
}

type httpAnswer struct {
	status int
	body   map[string]any
	raw    string
}

func (c *httpClient) login(code string) httpAnswer {
	return c.do("POST", "/login", "", `{"code":"`+code+`"}`)
}

func (c *httpClient) do(method, path, skey, body string) httpAnswer {
	c.t.Helper()
	a, err := c.try(method, path, skey, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return a
}

// try is do for any goroutine: it reports failures instead of ending the test.
func (c *httpClient) try(method, path, skey, body string) (httpAnswer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, rd)
	if err != nil {
		return httpAnswer{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if skey != "" {
		req.Header.Set("Authorization", "Bearer "+skey)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return httpAnswer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	a := httpAnswer{status: resp.StatusCode, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			return a, fmt.Errorf("%s %s: the body %q is not JSON", method, path, raw)
		}
	}
	return a, nil
}

// wechatClient adapts a *wechat.Client to session.CodeExchanger, as boot does
// (storetest cannot import boot: boot imports the stores it tests).
type wechatClient struct{ c *wechat.Client }

func (w wechatClient) Code2Session(ctx context.Context, code string) (session.WeChatSession, error) {
	ws, err := w.c.Code2Session(ctx, code)
	return session.WeChatSession(ws), err
}
