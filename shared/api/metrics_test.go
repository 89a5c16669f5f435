package api_test

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/internal/emfcheck"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/store/faulty"
	"github.com/wxsession/wxsession/shared/store/memory"
)

// lastLine returns the last log line the env wrote, as raw JSON and decoded.
func (e *env) lastLine(t *testing.T) ([]byte, map[string]any) {
	t.Helper()
	var last string
	sc := bufio.NewScanner(strings.NewReader(e.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		last = sc.Text()
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(last), &line); err != nil {
		t.Fatalf("log line is not JSON: %v: %q", err, last)
	}
	return []byte(last), line
}

// TestLogLineMetrics sends real requests through every route's handler and
// reads the metrics CloudWatch would make of each one's log line.
func TestLogLineMetrics(t *testing.T) {
	fs := faulty.New(memory.New(nil))
	e := newEnv(t, fs)
	skey, _ := e.login(t, "alice")
	tests := []struct {
		name             string
		prepare          func()
		method, path     string
		body             string
		header           []string
		function         string
		outcome          string
		status           int
		store, wechat    bool   // whether the request calls the store, WeChat
		errcodeDimension string // jscode2session's errcode, when WeChat answered
	}{
		{name: "login", method: "POST", path: "/login", body: `{"code":"` + e.emu.Code("bob") + `"}`,
			function: "login", outcome: "ok", status: 200, store: true, wechat: true, errcodeDimension: "0"},
		{name: "invalid code", prepare: func() { e.emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40029, Times: 1}) },
			method: "POST", path: "/login", body: `{"code":"x"}`,
			function: "login", outcome: "invalid_code", status: 401, store: true, wechat: true, errcodeDimension: "40029"},
		{name: "rate limited", prepare: func() { e.emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 45011, Times: 1}) },
			method: "POST", path: "/login", body: `{"code":"y"}`,
			function: "login", outcome: "rate_limited", status: 429, store: true, wechat: true, errcodeDimension: "45011"},
		{name: "WeChat busy twice", prepare: func() { e.emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1, Times: 2}) },
			method: "POST", path: "/login", body: `{"code":"z"}`,
			function: "login", outcome: "wechat_unavailable", status: 502, store: true, wechat: true, errcodeDimension: "-1"},
		{name: "WeChat HTTP error", prepare: func() { e.emu.SetFault(&emulator.Fault{Mode: emulator.FaultHTTPError, Times: 1}) },
			method: "POST", path: "/login", body: `{"code":"w"}`,
			function: "login", outcome: "wechat_unavailable", status: 502, store: true, wechat: true},
		{name: "validate", method: "GET", path: "/validate", header: bearer(skey),
			function: "validate", outcome: "ok", status: 200, store: true},
		{name: "store down", prepare: func() { fs.Set(faulty.Fault{Mode: faulty.Fail, Times: 1}) },
			method: "GET", path: "/validate", header: bearer(skey),
			function: "validate", outcome: "store_unavailable", status: 503, store: true},
		{name: "no skey", method: "POST", path: "/decrypt", body: `{}`,
			function: "decrypt", outcome: "session_required", status: 401},
		{name: "logout", method: "POST", path: "/logout", header: bearer(skey),
			function: "logout", outcome: "ok", status: 204, store: true},
		{name: "wrong method", method: "GET", path: "/login",
			function: "login", outcome: "method_not_allowed", status: 405},
		{name: "no route", method: "GET", path: "/nowhere",
			function: "unmatched", outcome: "not_found", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare()
			}
			defer e.emu.SetFault(nil)
			defer fs.Clear()
			if r := e.do(t, tt.method, tt.path, tt.body, tt.header...); r.status != tt.status {
				t.Fatalf("got %d %s, want %d", r.status, r.raw, tt.status)
			}
			raw, line := e.lastLine(t)
			metrics, err := emfcheck.Parse(raw)
			if err != nil {
				t.Fatalf("log line is not valid EMF: %v\n%s", err, raw)
			}
			// The fields operators read are there as before.
			if line["route"] == nil || line["status"] != float64(tt.status) || line["request_id"] == nil || line["method"] != tt.method {
				t.Errorf("log line lost its own fields: %s", raw)
			}
			if tt.outcome != "ok" && line["error"] != tt.outcome {
				t.Errorf("error = %v, want %s", line["error"], tt.outcome)
			}
			byKey := map[string]emfcheck.Metric{}
			for _, m := range metrics {
				if m.Namespace != "wxsession" {
					t.Errorf("metric %s in namespace %s, want wxsession", m.Name, m.Namespace)
				}
				byKey[m.Key()] = m
			}
			req, ok := byKey["wxsession/requests[function,outcome]"]
			if !ok || req.Value != 1 || req.Unit != "Count" || req.Values["function"] != tt.function || req.Values["outcome"] != tt.outcome {
				t.Fatalf("requests by function and outcome: got %+v (present %v), want 1 of %s/%s", req, ok, tt.function, tt.outcome)
			}
			for _, k := range []string{"wxsession/requests[function]", "wxsession/requests[outcome]", "wxsession/requests[]"} {
				if byKey[k].Value != 1 {
					t.Errorf("%s = %v, want 1", k, byKey[k].Value)
				}
			}
			if lat := byKey["wxsession/latency_ms[function,outcome]"]; lat.Value <= 0 || lat.Unit != "Milliseconds" || lat.Value != line["latency_ms"] {
				t.Errorf("latency_ms metric %+v, want the line's own latency_ms %v > 0", lat, line["latency_ms"])
			}
			store, hasStore := byKey["wxsession/store_latency_ms[function,outcome]"]
			if hasStore != tt.store || (hasStore && store.Value < 0) {
				t.Errorf("store latency: %+v present %v, want present %v", store, hasStore, tt.store)
			}
			wx, hasWeChat := byKey["wxsession/wechat_latency_ms[function,outcome]"]
			if hasWeChat != tt.wechat || (hasWeChat && wx.Value <= 0) {
				t.Errorf("WeChat latency: %+v present %v, want present %v and > 0", wx, hasWeChat, tt.wechat)
			}
			if hasStore && hasWeChat && store.Value+wx.Value > line["latency_ms"].(float64) {
				t.Errorf("store %v + WeChat %v ms is more than the request's %v ms", store.Value, wx.Value, line["latency_ms"])
			}
			errcode, hasErrcode := byKey["wxsession/requests[jscode2session_errcode]"]
			if (tt.errcodeDimension != "") != hasErrcode || errcode.Values["jscode2session_errcode"] != tt.errcodeDimension {
				t.Errorf("jscode2session errcode metric: %+v present %v, want %q", errcode, hasErrcode, tt.errcodeDimension)
			}
			if strings.Contains(string(raw), skey) {
				t.Errorf("the log line carries the skey")
			}
		})
	}
}
