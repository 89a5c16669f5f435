package wxsession_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7/cloudformation/cloudwatch"
	"gopkg.in/yaml.v3"

	"github.com/wxsession/wxsession/internal/emfcheck"
	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/store/faulty"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/wechat"
)

// emittedMetrics is what the request log lines make in CloudWatch.
type emittedMetrics struct {
	// keys are the metrics, as emfcheck.Metric.Key names them.
	keys map[string]bool
	// values are the values each dimension was seen with; an errcode
	// dimension (<api>_errcode) takes any errcode.
	values map[string]map[string]bool
	// serverErrors are the outcomes answered with a 5xx status.
	serverErrors map[string]bool
}

// emitted sends real requests (every outcome the alarms watch among them)
// through the product's handler, over a store and a WeChat that fail on
// demand, and collects the metrics of their log lines. The WeChat APIs whose
// errcodes are counted come from shared/wechat's own calls (the API name
// each passes to its one call path); that their dimension is
// <api>_errcode is what the jscode2session lines show.
func emitted(t *testing.T) emittedMetrics {
	t.Helper()
	const appID, secret = "wx0123456789abcdef", "emulator-secret"
	emu := emulator.New(appID, secret)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	fs := faulty.New(memory.New(nil))
	svc, err := boot.NewService(config.Config{AppID: appID, Secret: secret, APIBase: srv.URL, TTL: time.Hour, MaxAge: 2 * time.Hour},
		fs, wechat.NewClient(srv.URL, appID, secret, nil))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := api.All(svc, api.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	do := func(method, path, body, skey string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if skey != "" {
			r.Header.Set("Authorization", "Bearer "+skey)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var login struct{ Skey string }
	_ = json.Unmarshal(do("POST", "/login", `{"code":"`+emu.Code("alice")+`"}`, "").Body.Bytes(), &login)
	for _, code := range []int{40029, 45011, 40226} {
		emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: code, Times: 1})
		do("POST", "/login", `{"code":"x"}`, "")
	}
	emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1, Times: 2})
	do("POST", "/login", `{"code":"y"}`, "")
	do("GET", "/validate", "", login.Skey)
	fs.Set(faulty.Fault{Mode: faulty.Fail, Times: 1})
	do("GET", "/validate", "", login.Skey)
	fs.Set(faulty.Fault{Mode: faulty.Panic, Times: 1})
	do("GET", "/validate", "", login.Skey)
	do("POST", "/decrypt", `{}`, "")
	do("POST", "/logout", ``, login.Skey)
	do("GET", "/nowhere", "", "")

	e := emittedMetrics{keys: map[string]bool{}, values: map[string]map[string]bool{}, serverErrors: map[string]bool{}}
	sc := bufio.NewScanner(&logs)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		ms, err := emfcheck.Parse(sc.Bytes())
		if err != nil {
			t.Fatalf("log line is not valid EMF: %v\n%s", err, sc.Text())
		}
		var line struct {
			Status  int    `json:"status"`
			Outcome string `json:"outcome"`
		}
		_ = json.Unmarshal(sc.Bytes(), &line)
		if line.Status >= 500 {
			e.serverErrors[line.Outcome] = true
		}
		for _, m := range ms {
			e.keys[m.Key()] = true
			for k, v := range m.Values {
				if e.values[k] == nil {
					e.values[k] = map[string]bool{}
				}
				e.values[k][v] = true
			}
		}
	}
	if !e.keys["wxsession/requests[jscode2session_errcode]"] {
		t.Fatalf("no line counts jscode2session's errcode; metrics seen: %v", e.keys)
	}
	for _, api := range wechatAPIs(t) {
		e.keys["wxsession/requests["+api+"_errcode]"] = true
	}
	return e
}

// wechatAPIs returns the API names shared/wechat passes to its one call
// path (do, postJSON): the names its errcodes are counted under.
func wechatAPIs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("shared/wechat/*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "do" || sel.Sel.Name == "postJSON") {
				if lit, ok := call.Args[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					name, _ := strconv.Unquote(lit.Value)
					seen[name] = true
				}
			}
			return true
		})
	}
	apis := slices.Sorted(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	})
	for _, want := range []string{"jscode2session", "stable_token", "getuserphonenumber"} {
		if !seen[want] {
			t.Fatalf("shared/wechat calls %v, not %s", apis, want)
		}
	}
	return apis
}

var errcodeValue = regexp.MustCompile(`^-?[0-9]+$`)

// check reports whether a metric the template names is one the log lines
// make, with dimension values they carry.
func (e emittedMetrics) check(namespace, name string, dims map[string]string) string {
	names := make([]string, 0, len(dims))
	for k := range dims {
		names = append(names, k)
	}
	sort.Strings(names)
	key := namespace + "/" + name + "[" + strings.Join(names, ",") + "]"
	if !e.keys[key] {
		return "no log line makes " + key
	}
	for k, v := range dims {
		if strings.HasSuffix(k, "_errcode") {
			if !errcodeValue.MatchString(v) {
				return k + " = " + v + " is no errcode"
			}
			continue
		}
		if !e.values[k][v] {
			return k + " = " + v + " is on no log line"
		}
	}
	return ""
}

// TestTemplateMetrics checks the alarms and the dashboard of template.yaml
// against the metrics real log lines make, so the two cannot drift, and the
// alarms' optional SNS topic.
func TestTemplateMetrics(t *testing.T) {
	tmpl, _ := openTemplate(t)
	e := emitted(t)
	alarms := tmpl.GetAllCloudWatchAlarmResources()

	// What the alarms must watch: dimension values some alarm's metric has.
	watched := map[string]bool{}
	for name, a := range alarms {
		t.Run(name, func(t *testing.T) {
			if deref(a.AlarmName) == "" || deref(a.AlarmDescription) == "" || a.EvaluationPeriods < 1 {
				t.Errorf("no name, description or evaluation periods")
			}
			if a.DatapointsToAlarm != nil && *a.DatapointsToAlarm > a.EvaluationPeriods {
				t.Errorf("DatapointsToAlarm %d > EvaluationPeriods %d", *a.DatapointsToAlarm, a.EvaluationPeriods)
			}
			if deref(a.TreatMissingData) != "notBreaching" {
				t.Errorf("TreatMissingData %q, want notBreaching (no traffic is no failure)", deref(a.TreatMissingData))
			}
			dimsOf := func(ds []cloudwatch.Alarm_Dimension) map[string]string {
				m := map[string]string{}
				for _, d := range ds {
					m[d.Name] = d.Value
					watched[d.Name+"="+d.Value] = true
				}
				return m
			}
			if a.MetricName != nil {
				if len(a.Metrics) > 0 {
					t.Fatal("both MetricName and Metrics")
				}
				if msg := e.check(deref(a.Namespace), *a.MetricName, dimsOf(a.Dimensions)); msg != "" {
					t.Error(msg)
				}
				return
			}
			ids := map[string]bool{}
			returned := 0
			for _, q := range a.Metrics {
				ids[q.Id] = true
				if q.ReturnData == nil || *q.ReturnData {
					returned++
				}
			}
			if returned != 1 {
				t.Errorf("%d queries return data, want exactly one", returned)
			}
			for _, q := range a.Metrics {
				switch {
				case q.MetricStat != nil:
					if msg := e.check(deref(q.MetricStat.Metric.Namespace), deref(q.MetricStat.Metric.MetricName), dimsOf(q.MetricStat.Metric.Dimensions)); msg != "" {
						t.Errorf("%s: %s", q.Id, msg)
					}
				case q.Expression != nil:
					for _, id := range expressionIDs(*q.Expression) {
						if !ids[id] {
							t.Errorf("%s: expression %q uses %s, which no query defines", q.Id, *q.Expression, id)
						}
					}
				default:
					t.Errorf("%s: neither a metric nor an expression", q.Id)
				}
			}
		})
	}
	// Every figure the alarms promise is watched.
	want := []string{"outcome=store_unavailable", "outcome=wechat_unavailable", "outcome=rate_limited",
		"getuserphonenumber_errcode=40001", "stable_token_errcode=45009", "function=login", "outcome=ok"}
	for o := range e.serverErrors {
		want = append(want, "outcome="+o) // the 5xx rate counts every 5xx outcome
	}
	for _, w := range want {
		if !watched[w] {
			t.Errorf("no alarm watches %s", w)
		}
	}
	if len(e.serverErrors) < 3 {
		t.Errorf("5xx outcomes seen %v, want internal, store_unavailable and wechat_unavailable at least", e.serverErrors)
	}

	t.Run("SNS topic", func(t *testing.T) { checkAlarmTopic(t, alarms) })
	t.Run("dashboard", func(t *testing.T) { checkDashboard(t, tmpl.GetAllCloudWatchDashboardResources(), alarms, e) })
}

// expressionIDs returns the query ids a metric math expression uses: its
// lower-case words that are not functions.
func expressionIDs(expr string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`\b([a-z][a-zA-Z0-9_]*)\b(\s*\()?`).FindAllStringSubmatch(expr, -1) {
		if m[2] == "" {
			ids = append(ids, m[1])
		}
	}
	return ids
}

// checkAlarmTopic checks, in the template as written, that every alarm
// notifies the AlarmTopicArn parameter on alarm and on recovery, and only
// when it is set.
func checkAlarmTopic(t *testing.T, alarms map[string]*cloudwatch.Alarm) {
	t.Helper()
	root := yamlTemplate(t)
	param := child(child(root, "Parameters"), "AlarmTopicArn")
	if got := flow(param); got != `{Type: "String", Default: "", Description: `+flow(child(param, "Description"))+`}` {
		t.Errorf("parameter AlarmTopicArn is %s, want a String defaulting to empty", got)
	}
	if got, want := flow(child(child(root, "Conditions"), "HasAlarmTopic")), `!Not [!Equals [!Ref "AlarmTopicArn", ""]]`; got != want {
		t.Errorf("condition HasAlarmTopic is %s, want %s", got, want)
	}
	want := `!If ["HasAlarmTopic", [!Ref "AlarmTopicArn"], !Ref "AWS::NoValue"]`
	resources := child(root, "Resources")
	seen := 0
	for i := 0; i+1 < len(resources.Content); i += 2 {
		name, res := resources.Content[i].Value, resources.Content[i+1]
		if child(res, "Type").Value != "AWS::CloudWatch::Alarm" {
			continue
		}
		seen++
		if _, ok := alarms[name]; !ok {
			t.Errorf("alarm %s is not parsed by goformation", name)
		}
		for _, actions := range []string{"AlarmActions", "OKActions"} {
			if got := flow(child(child(res, "Properties"), actions)); got != want {
				t.Errorf("%s %s is %s, want %s", name, actions, got, want)
			}
		}
	}
	if seen != len(alarms) || seen == 0 {
		t.Errorf("%d alarms written, %d parsed", seen, len(alarms))
	}
}

var (
	searchExpr = regexp.MustCompile(`SEARCH\('\{([^}]*)\}\s+MetricName="([^"]+)"'`)
	arnRef     = regexp.MustCompile(`\$\{([A-Za-z0-9]+)\.Arn\}`)
)

// checkDashboard checks that the dashboard body is JSON once CloudFormation
// has substituted it, that every metric it shows is one the log lines make,
// that its metric math uses only ids it defines, that it shows every alarm,
// and that it shows the same figures as the alarms and the CLS queries:
// requests by outcome, 5xx rate, latency, store and WeChat latency, each
// WeChat API's errcodes and the login failure ratio.
func checkDashboard(t *testing.T, dashboards map[string]*cloudwatch.Dashboard, alarms map[string]*cloudwatch.Alarm, e emittedMetrics) {
	t.Helper()
	if len(dashboards) != 1 {
		t.Fatalf("%d dashboards, want 1", len(dashboards))
	}
	var body string
	for _, d := range dashboards {
		body = strings.TrimPrefix(d.DashboardBody, "sub:")
	}
	shown := map[string]bool{}
	body = arnRef.ReplaceAllStringFunc(body, func(ref string) string {
		name := arnRef.FindStringSubmatch(ref)[1]
		if _, ok := alarms[name]; !ok {
			t.Errorf("the dashboard shows %s, which is no alarm", name)
		}
		shown[name] = true
		return "arn:aws:cloudwatch:ap-east-1:123456789012:alarm:" + name
	})
	body = strings.ReplaceAll(body, "${AWS::Region}", "ap-east-1")
	if strings.Contains(body, "${") {
		t.Errorf("the dashboard body has a substitution other than the region and alarm ARNs")
	}
	var dash struct {
		Widgets []struct {
			Type       string `json:"type"`
			Properties struct {
				Title   string  `json:"title"`
				Region  string  `json:"region"`
				Metrics [][]any `json:"metrics"`
				Alarms  []string
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &dash); err != nil {
		t.Fatalf("the dashboard body is not JSON: %v", err)
	}
	used := map[string]bool{}
	for _, w := range dash.Widgets {
		p := w.Properties
		if w.Type == "alarm" {
			continue
		}
		if w.Type != "metric" || p.Region != "ap-east-1" || len(p.Metrics) == 0 {
			t.Errorf("widget %q: type %s region %s with %d metrics, want a metric widget in the stack's region", p.Title, w.Type, p.Region, len(p.Metrics))
			continue
		}
		ids := map[string]bool{}
		var exprs []string
		for _, row := range p.Metrics {
			if len(row) == 0 {
				t.Errorf("widget %q: empty metric row", p.Title)
				continue
			}
			if opts, ok := row[0].(map[string]any); ok {
				expr, _ := opts["expression"].(string)
				ids[fmtID(opts["id"])] = true
				if m := searchExpr.FindStringSubmatch(expr); m != nil {
					parts := strings.Split(m[1], ",")
					dims := slices.Clone(parts[1:])
					sort.Strings(dims)
					key := parts[0] + "/" + m[2] + "[" + strings.Join(dims, ",") + "]"
					if !e.keys[key] {
						t.Errorf("widget %q searches %s, which no log line makes", p.Title, key)
					}
					used[key] = true
				} else {
					exprs = append(exprs, expr)
				}
				continue
			}
			var strs []string
			for _, v := range row {
				if opts, ok := v.(map[string]any); ok {
					ids[fmtID(opts["id"])] = true
					break
				}
				s, _ := v.(string)
				strs = append(strs, s)
			}
			if len(strs) < 2 || len(strs)%2 != 0 {
				t.Errorf("widget %q: metric row %v is not namespace, name and dimension pairs", p.Title, row)
				continue
			}
			dims := map[string]string{}
			for i := 2; i+1 < len(strs); i += 2 {
				dims[strs[i]] = strs[i+1]
			}
			if msg := e.check(strs[0], strs[1], dims); msg != "" {
				t.Errorf("widget %q: %s", p.Title, msg)
			}
			names := slices.Sorted(func(yield func(string) bool) {
				for k := range dims {
					if !yield(k) {
						return
					}
				}
			})
			used[strs[0]+"/"+strs[1]+"["+strings.Join(names, ",")+"]"] = true
		}
		for _, expr := range exprs {
			if expr == "" {
				t.Errorf("widget %q: a row with neither a metric nor an expression", p.Title)
			}
			for _, id := range expressionIDs(expr) {
				if !ids[id] {
					t.Errorf("widget %q: expression %q uses %s, which no row defines", p.Title, expr, id)
				}
			}
		}
	}
	for name := range alarms {
		if !shown[name] {
			t.Errorf("the dashboard does not show alarm %s", name)
		}
	}
	figures := []string{"wxsession/requests[outcome]", "wxsession/requests[]", "wxsession/latency_ms[function]",
		"wxsession/store_latency_ms[function]", "wxsession/wechat_latency_ms[function]", "wxsession/requests[function,outcome]"}
	for _, api := range wechatAPIs(t) {
		figures = append(figures, "wxsession/requests["+api+"_errcode]")
	}
	for _, f := range figures {
		if !used[f] {
			t.Errorf("the dashboard does not show %s", f)
		}
	}
}

func fmtID(v any) string { s, _ := v.(string); return s }

// yamlTemplate is template.yaml as a YAML tree, tags (!If, !Ref) kept.
func yamlTemplate(t *testing.T) *yaml.Node {
	t.Helper()
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// flow renders a YAML node as one line with its tags, for comparison.
func flow(n *yaml.Node) string {
	if n == nil {
		return "<nil>"
	}
	tag := ""
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		tag = n.Tag + " "
	}
	switch n.Kind {
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, c := range n.Content {
			parts[i] = flow(c)
		}
		return tag + "[" + strings.Join(parts, ", ") + "]"
	case yaml.MappingNode:
		parts := make([]string, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			parts = append(parts, n.Content[i].Value+": "+flow(n.Content[i+1]))
		}
		return tag + "{" + strings.Join(parts, ", ") + "}"
	}
	return tag + strconv.Quote(n.Value)
}

// checkProbeMetrics checks the log line a deployed function wrote for its
// probe: valid Embedded Metric Format, counting one request of function
// with outcome code.
func checkProbeMetrics(t *testing.T, p *process, function, code string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, l := range strings.Split(p.out.String(), "\n") {
			if !strings.Contains(l, `"msg":"request"`) {
				continue
			}
			ms, err := emfcheck.Parse([]byte(l))
			if err != nil {
				t.Fatalf("%s: request log line is not valid EMF: %v\n%s", function, err, l)
			}
			for _, m := range ms {
				if m.Key() == "wxsession/requests[function,outcome]" {
					if m.Value != 1 || m.Values["function"] != function || m.Values["outcome"] != code {
						t.Errorf("%s: requests metric %+v, want 1 of %s/%s", function, m, function, code)
					}
					return
				}
			}
			t.Fatalf("%s: request log line makes no requests metric: %s", function, l)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s wrote no request log line; output:\n%s", function, p.out.String())
		}
	}
}
