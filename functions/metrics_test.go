package functions_test

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/internal/emfcheck"
)

// requestLine is what the metrics tests read of a request's log line.
type requestLine struct {
	raw       []byte
	fields    map[string]any
	byKey     map[string]emfcheck.Metric
	function  string
	outcome   string
	latencyMS float64
}

// requestLines returns the request log lines p wrote so far, each checked
// as Embedded Metric Format.
func requestLines(t *testing.T, p *process) []requestLine {
	t.Helper()
	var out []requestLine
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var fields map[string]any
		if json.Unmarshal(sc.Bytes(), &fields) != nil || fields["msg"] != "request" {
			continue
		}
		ms, err := emfcheck.Parse(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: request log line is not valid EMF: %v\n%s", p.name, err, sc.Text())
		}
		l := requestLine{raw: append([]byte(nil), sc.Bytes()...), fields: fields, byKey: map[string]emfcheck.Metric{}}
		l.function, _ = fields["function"].(string)
		l.outcome, _ = fields["outcome"].(string)
		l.latencyMS, _ = fields["latency_ms"].(float64)
		for _, m := range ms {
			l.byKey[m.Key()] = m
		}
		out = append(out, l)
	}
	return out
}

// checkFlowMetrics checks the log lines of a flow's function binaries: each
// request line makes one request of its function and outcome, with a
// latency and the error code it answered; the login line's store and WeChat
// latencies are real times and jscode2session's errcode is counted.
func checkFlowMetrics(t *testing.T, procs map[string]*process) {
	t.Helper()
	var login requestLine
	// The lines reach the buffer through a pipe: wait for the login's.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, l := range requestLines(t, procs["login"]) {
			if l.function == "login" && l.outcome == "ok" {
				login = l
			}
		}
		if login.raw != nil || time.Now().After(deadline) {
			break
		}
	}
	if login.raw == nil {
		t.Fatalf("login wrote no request line for its successful login; output:\n%s", procs["login"].stderr.String())
	}
	t.Logf("login's request log line (%d bytes): %s", len(login.raw), login.raw)
	if m := login.byKey["wxsession/store_latency_ms[function,outcome]"]; m.Value <= 0 {
		t.Errorf("login's store latency %v, want > 0 (store calls): %s", m.Value, login.raw)
	}
	if m := login.byKey["wxsession/wechat_latency_ms[function,outcome]"]; m.Value <= 0 {
		t.Errorf("login's WeChat latency %v, want > 0: %s", m.Value, login.raw)
	}
	if m, ok := login.byKey["wxsession/requests[jscode2session_errcode]"]; !ok || m.Values["jscode2session_errcode"] != "0" || m.Value != 1 {
		t.Errorf("login's jscode2session errcode metric %+v, want one request with errcode 0: %s", m, login.raw)
	}
	for name, p := range procs {
		lines := requestLines(t, p)
		if len(lines) == 0 {
			t.Errorf("%s wrote no request line", name)
		}
		for _, l := range lines {
			req := l.byKey["wxsession/requests[function,outcome]"]
			if req.Value != 1 || req.Values["function"] != l.function || req.Values["outcome"] != l.outcome {
				t.Errorf("%s: requests metric %+v, want 1 of the line's function and outcome: %s", name, req, l.raw)
			}
			if l.function != name && l.function != "unmatched" {
				t.Errorf("%s: line of function %q: %s", name, l.function, l.raw)
			}
			if l.latencyMS <= 0 || l.byKey["wxsession/latency_ms[]"].Value != l.latencyMS {
				t.Errorf("%s: latency metric %v, want the line's latency_ms %v > 0", name, l.byKey["wxsession/latency_ms[]"].Value, l.latencyMS)
			}
			if code, _ := l.fields["error"].(string); (code == "") != (l.outcome == "ok") || (code != "" && code != l.outcome) {
				t.Errorf("%s: outcome %q for error %q: %s", name, l.outcome, code, l.raw)
			}
		}
	}
}
