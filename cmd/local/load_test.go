package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/emulator"
)

// loadUsers is how many users run the whole flow at once.
const loadUsers = 300

// dynamoConns is how many requests the users have in flight at a time
// against DynamoDB Local (see runLoad).
const dynamoConns = 32

// TestLoadNothingLost runs loadUsers concurrent users against the local
// server (the built binary, on a real socket), on each store: every user logs in, validates,
// decrypts data made for them, logs out, and finds the skey refused. The test
// asserts what must hold under load (no error, no lost session, no answer
// carrying another user's openid or data) and only logs the speed, which is
// for the closing note, not a pass mark.
//
// The memory store always runs. Redis and DynamoDB Local run when
// WXSESSION_LOAD is set, which make test does in a step of its own after the
// other tests: while the other test packages run in parallel with it, a
// 2-core machine's DynamoDB Local (a JVM shared with them) cannot answer 300
// users within the store's 1.5 s budget per call, and 503 store_unavailable
// would then be the right answer, not a finding.
func TestLoadNothingLost(t *testing.T) {
	for name, env := range storeEnvs(t) {
		t.Run(name, func(t *testing.T) {
			if name != "memory" && os.Getenv("WXSESSION_LOAD") == "" {
				t.Skip("set WXSESSION_LOAD=1 to load " + name + " (make test does, in a step of its own)")
			}
			runLoad(t, name, env)
		})
	}
}

// loadStats counts what went wrong, and how long each product request took.
type loadStats struct {
	errors, lost, foreign atomic.Int64
	mu                    sync.Mutex
	latencies             []time.Duration
	firstErrors           []string
}

func (s *loadStats) fail(counter *atomic.Int64, format string, args ...any) {
	counter.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.firstErrors) < 10 {
		s.firstErrors = append(s.firstErrors, fmt.Sprintf(format, args...))
	}
}

func (s *loadStats) took(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latencies = append(s.latencies, d)
}

func runLoad(t *testing.T, store string, env map[string]string) {
	// The local server as `make run` builds it, in a process of its own: the
	// figures are the product's, not the race detector's.
	env = maps(env, nil)
	for _, k := range []string{"AWS_ENDPOINT_URL_DYNAMODB", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	p := startLocalBinary(t, env)
	base := p.base
	defer func() {
		if t.Failed() {
			for _, line := range strings.Split(p.out.String(), "\n") {
				if strings.Contains(line, `"status":503`) {
					t.Logf("first 503 log line: %s", line)
					break
				}
			}
		}
	}()
	// All users run at once, each on a connection of its own; against
	// DynamoDB Local they share dynamoConns. DynamoDB Local is a JVM on the
	// same two cores, and with 300 requests in flight it queues each one for
	// seconds, past the store's 1.5 s budget per call (a real table answers
	// in milliseconds): 503 store_unavailable would then be the right answer,
	// not a finding. Capping connections keeps 300 users' flows interleaved,
	// which is what the test is about, at a pace the emulator can serve.
	conns := loadUsers
	if store == "dynamodb" {
		conns = dynamoConns
	}
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxConnsPerHost: conns, MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 30 * time.Second},
	}
	t.Cleanup(client.CloseIdleConnections)
	ids := emulator.New(demoAppID, "") // openids depend on the app and the user only
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	stats := &loadStats{}

	type answer struct {
		status int
		body   map[string]any
	}
	send := func(method, path, skey string, body any, product bool) (answer, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(context.Background(), method, base+path, rd)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if skey != "" {
			req.Header.Set("Authorization", "Bearer "+skey)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return answer{}, err
		}
		defer func() { _ = resp.Body.Close() }()
		raw, err := io.ReadAll(resp.Body)
		if product {
			stats.took(time.Since(start))
		}
		if err != nil {
			return answer{}, err
		}
		a := answer{status: resp.StatusCode}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &a.body); err != nil {
				return a, fmt.Errorf("%s %s: body %q is not JSON", method, path, raw)
			}
		}
		return a, nil
	}

	user := func(i int) {
		name := "load-" + run + "-" + strconv.Itoa(i)
		wantOpenID := ids.OpenID(name)
		step := func(what string, a answer, err error, want int) bool {
			if err != nil || a.status != want {
				stats.fail(&stats.errors, "%s %s: got %d %v (%v), want %d", name, what, a.status, a.body, err, want)
				if a.body["error"] == "session_expired" {
					stats.lost.Add(1)
				}
				return false
			}
			if got, ok := a.body["openid"]; ok && got != wantOpenID {
				stats.fail(&stats.foreign, "%s %s: answered openid %v, want %s", name, what, got, wantOpenID)
				return false
			}
			return true
		}
		a, err := send("POST", "/emulator/wx.login?user="+url.QueryEscape(name), "", nil, false)
		if !step("wx.login", a, err, 200) {
			return
		}
		code, _ := a.body["code"].(string)
		a, err = send("POST", "/login", "", map[string]string{"code": code}, true)
		if !step("login", a, err, 200) {
			return
		}
		skey, _ := a.body["skey"].(string)
		if a, err = send("GET", "/validate", skey, nil, true); !step("validate", a, err, 200) {
			return
		}
		a, err = send("POST", "/emulator/encrypt", "", map[string]any{"openid": wantOpenID, "data": map[string]any{"user": name}}, false)
		if !step("encrypt", a, err, 200) {
			return
		}
		enc := a.body
		a, err = send("POST", "/decrypt", skey, enc, true)
		if !step("decrypt", a, err, 200) {
			return
		}
		data, _ := a.body["data"].(map[string]any)
		if data["user"] != name {
			stats.fail(&stats.foreign, "%s decrypt: answered the data of %v", name, data["user"])
			return
		}
		if a, err = send("POST", "/logout", skey, nil, true); !step("logout", a, err, 204) {
			return
		}
		a, err = send("GET", "/validate", skey, nil, true)
		if err != nil || a.status != 401 || a.body["error"] != "session_expired" {
			stats.fail(&stats.errors, "%s validate after logout: got %d %v (%v), want 401 session_expired", name, a.status, a.body, err)
		}
	}

	// Warm up first with a few users at a time: a freshly started DynamoDB
	// Local (a JVM that has not compiled its hot paths yet) takes seconds
	// per call under 300 at once, past the store's 1.5 s budget, and would
	// rightly answer 503. Warm-up requests must succeed too, but are not
	// timed.
	var wg sync.WaitGroup
	const warmUsers = 60
	for batch := range warmUsers / 20 {
		for i := range 20 {
			wg.Go(func() { user(loadUsers + 20*batch + i) })
		}
		wg.Wait()
	}
	stats.mu.Lock()
	warmed := len(stats.latencies)
	stats.latencies = nil
	stats.mu.Unlock()
	if warmed != warmUsers*5 {
		t.Errorf("warm-up: %d product requests answered as they should, want %d", warmed, warmUsers*5)
	}

	gate := make(chan struct{})
	for i := range loadUsers {
		wg.Go(func() {
			<-gate
			user(i)
		})
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	wall := time.Since(start)

	slices.Sort(stats.latencies)
	n := len(stats.latencies)
	pct := func(p float64) time.Duration {
		if n == 0 {
			return 0
		}
		return stats.latencies[min(n-1, int(float64(n)*p))]
	}
	t.Logf("%s: %d users, %d product requests in %v: %.0f requests/s, p50 %v, p99 %v, max %v; errors %d, lost sessions %d, foreign answers %d",
		store, loadUsers, n, wall.Round(time.Millisecond), float64(n)/wall.Seconds(),
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond),
		stats.errors.Load(), stats.lost.Load(), stats.foreign.Load())
	for _, e := range stats.firstErrors {
		t.Error(e)
	}
	if stats.errors.Load() != 0 || stats.lost.Load() != 0 || stats.foreign.Load() != 0 {
		t.Fatalf("under load: %d errors, %d lost sessions, %d answers carrying another user's openid or data; want 0 of each",
			stats.errors.Load(), stats.lost.Load(), stats.foreign.Load())
	}
	if want := loadUsers * 5; n != want {
		t.Fatalf("%d product requests made, want %d", n, want)
	}
}
