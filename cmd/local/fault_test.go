package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/wechat"
)

// TestWeChatFaults switches on each of the emulator's fault modes through its
// HTTP API, as a developer would with curl, and logs in through the local
// server: each fault gets its contract answer, WeChat is called as often as
// the contract allows (one retry on -1, none otherwise), and once the fault
// is cleared the same server logs in again.
func TestWeChatFaults(t *testing.T) {
	base, _ := startLocal(t, nil)
	tests := []struct {
		name       string
		fault      map[string]any
		wantStatus int
		wantCode   string
		wantCalls  int
		// reuse: the code WeChat never used logs in after the fault clears.
		reuse bool
	}{
		{"slow, within the attempt timeout", map[string]any{"mode": "slow", "delay": "200ms"}, 200, "", 1, false},
		{"HTTP 500", map[string]any{"mode": "http_error", "status": 500}, 502, "wechat_unavailable", 1, true},
		{"HTTP 502", map[string]any{"mode": "http_error", "status": 502}, 502, "wechat_unavailable", 1, true},
		{"HTTP 503", map[string]any{"mode": "http_error", "status": 503}, 502, "wechat_unavailable", 1, true},
		{"HTTP 404", map[string]any{"mode": "http_error", "status": 404}, 502, "wechat_unavailable", 1, true},
		{"not JSON", map[string]any{"mode": "garbage"}, 502, "wechat_unavailable", 1, true},
		// Go's Transport sends an idempotent request again, once, when a
		// reused connection closes before any answer: one or two calls.
		{"connection dropped", map[string]any{"mode": "reset"}, 502, "wechat_unavailable", 2, true},
		{"-1 once, then fine", map[string]any{"mode": "errcode", "errcode": -1, "times": 1}, 200, "", 2, false},
		{"-1 twice", map[string]any{"mode": "errcode", "errcode": -1}, 502, "wechat_unavailable", 2, true},
		{"-1 after using the code", map[string]any{"mode": "errcode", "errcode": -1, "times": 1, "consume_code": true}, 502, "wechat_unavailable", 2, false},
		{"40029 invalid code", map[string]any{"mode": "errcode", "errcode": 40029}, 401, "invalid_code", 1, true},
		{"40163 code used", map[string]any{"mode": "errcode", "errcode": 40163}, 401, "invalid_code", 1, true},
		{"40226 high-risk user", map[string]any{"mode": "errcode", "errcode": 40226}, 403, "code_blocked", 1, true},
		{"45011 rate limited", map[string]any{"mode": "errcode", "errcode": 45011}, 429, "rate_limited", 1, true},
		{"40013 invalid appid", map[string]any{"mode": "errcode", "errcode": 40013}, 502, "wechat_unavailable", 1, true},
		{"40125 invalid secret", map[string]any{"mode": "errcode", "errcode": 40125}, 502, "wechat_unavailable", 1, true},
		{"40002 invalid grant type", map[string]any{"mode": "errcode", "errcode": 40002}, 502, "wechat_unavailable", 1, true},
		{"unknown errcode", map[string]any{"mode": "errcode", "errcode": 99999}, 502, "wechat_unavailable", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call(t, "POST", base+"/emulator/fault", "", tt.fault, 204)
			calls := wechatCalls(t, base)
			code := call(t, "POST", base+"/emulator/wx.login?user=alice", "", nil, 200)["code"].(string)
			resp := callRaw(t, "POST", base+"/login", map[string]string{"code": code})
			if resp.status != tt.wantStatus || (tt.wantCode != "" && resp.body["error"] != tt.wantCode) {
				t.Fatalf("got %d %s, want %d %s", resp.status, resp.raw, tt.wantStatus, tt.wantCode)
			}
			if tt.wantStatus == 429 && resp.header.Get("Retry-After") != "60" {
				t.Errorf("429 with Retry-After %q, want 60", resp.header.Get("Retry-After"))
			}
			if tt.wantStatus >= 500 && strings.Contains(resp.raw, "errcode") {
				t.Errorf("the answer carries WeChat's detail: %s", resp.raw)
			}
			if got := wechatCalls(t, base) - calls; got != tt.wantCalls && (tt.fault["mode"] != "reset" || got != 1) {
				t.Errorf("WeChat was called %d times, want %d", got, tt.wantCalls)
			}
			call(t, "DELETE", base+"/emulator/fault", "", nil, 204)
			if tt.reuse {
				// WeChat answered with an error without using the code (as it does),
				// and the failed login released its claim: the code still works.
				call(t, "POST", base+"/login", "", map[string]string{"code": code}, 200)
			}
			fresh := call(t, "POST", base+"/emulator/wx.login?user=alice", "", nil, 200)["code"].(string)
			call(t, "POST", base+"/login", "", map[string]string{"code": fresh}, 200)
		})
	}
}

// TestWeChatHang makes WeChat never answer: the login answers 502
// wechat_unavailable once the attempt timeout (3 s) is up, with a margin for
// a loaded machine, and the code is still good afterwards.
func TestWeChatHang(t *testing.T) {
	base, logs := startLocal(t, nil)
	call(t, "POST", base+"/emulator/fault", "", map[string]any{"mode": "hang"}, 204)
	code := call(t, "POST", base+"/emulator/wx.login?user=alice", "", nil, 200)["code"].(string)
	start := time.Now()
	resp := callRaw(t, "POST", base+"/login", map[string]string{"code": code})
	took := time.Since(start)
	if resp.status != 502 || resp.body["error"] != "wechat_unavailable" {
		t.Fatalf("got %d %s, want 502 wechat_unavailable", resp.status, resp.raw)
	}
	const margin = 1500 * time.Millisecond
	if took > wechat.DefaultAttemptTimeout+margin {
		t.Fatalf("answered after %v, want within the attempt timeout %v + %v", took.Round(time.Millisecond), wechat.DefaultAttemptTimeout, margin)
	}
	t.Logf("WeChat hang: 502 wechat_unavailable after %v", took.Round(time.Millisecond))
	if !strings.Contains(logs.String(), `"error":"wechat_unavailable"`) {
		t.Errorf("the log line does not record the failure")
	}
	call(t, "DELETE", base+"/emulator/fault", "", nil, 204)
	call(t, "POST", base+"/login", "", map[string]string{"code": code}, 200)
}

func wechatCalls(t *testing.T, base string) int {
	t.Helper()
	return int(call(t, "GET", base+"/emulator/stats", "", nil, 200)["jscode2session_calls"].(float64))
}

type rawAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// callRaw sends a JSON body and returns the answer, whatever its status.
func callRaw(t *testing.T, method, url string, body any) rawAnswer {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	a := socketEntry("")(t, hostileRequest{method: method, target: url, header: jsonCT, body: string(b)})
	r := rawAnswer{status: a.status, header: a.header, raw: string(a.body)}
	if len(a.body) > 0 {
		if err := json.Unmarshal(a.body, &r.body); err != nil {
			t.Fatalf("%s %s: %q is not JSON", method, url, a.body)
		}
	}
	return r
}
