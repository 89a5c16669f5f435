package api

import (
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxsession/wxsession/shared/reqlog"
)

// MetricNamespace is the CloudWatch namespace of the metrics each request's
// log line carries.
const MetricNamespace = "wxsession"

// The metrics and dimensions of a request's log line, in CloudWatch Embedded
// Metric Format: CloudWatch Logs turns each line into metric data points
// itself, so no metrics client and no API call is on the request path, and
// Tencent CLS indexes the same members as plain JSON fields.
const (
	// dimFunction is the function (route) that served the request: login,
	// validate, decrypt, logout, phonenumber, token, or unmatched.
	dimFunction = "function"
	// dimOutcome is the contract's error code, or ok.
	dimOutcome = "outcome"
	// metricRequests is 1 on every line: counted, it is the request count.
	metricRequests = "requests"
	// metricLatency is the line's own latency_ms.
	metricLatency = "latency_ms"
	// metricStoreLatency is the time spent in session store calls, present
	// when the request made one.
	metricStoreLatency = "store_latency_ms"
	// metricWeChatLatency is the time spent in HTTP calls to WeChat, present
	// when the request made one.
	metricWeChatLatency = "wechat_latency_ms"
	// errcodeSuffix names the dimension carrying a WeChat API's errcode:
	// jscode2session_errcode, stable_token_errcode,
	// getuserphonenumber_errcode.
	errcodeSuffix = "_errcode"
)

// emf is the _aws member of an Embedded Metric Format document.
type emf struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// requestDimensions are the dimension sets of the request metrics: by
// function and outcome, by function (a function's total), by outcome (the
// API's 5xx codes), and none (every request).
var requestDimensions = [][]string{{dimFunction, dimOutcome}, {dimFunction}, {dimOutcome}, {}}

// metricAttrs returns the members a request's log line adds for its metrics:
// the dimensions, the values the line does not already carry (latency_ms is
// the line's own), one errcode dimension per WeChat API that answered, and
// the _aws directive naming them. Values absent from the line (no store
// call, no WeChat call) are absent from the directive too, so an average
// counts only the requests that made the call.
func metricAttrs(route, outcome string, m reqlog.Measures, now time.Time) []slog.Attr {
	function := strings.TrimPrefix(route, "/")
	attrs := []slog.Attr{
		slog.String(dimFunction, function),
		slog.String(dimOutcome, outcome),
		slog.Int(metricRequests, 1),
	}
	metrics := []emfMetric{{metricRequests, "Count"}, {metricLatency, "Milliseconds"}}
	if m.StoreCalls > 0 {
		attrs = append(attrs, slog.Float64(metricStoreLatency, milliseconds(m.Store)))
		metrics = append(metrics, emfMetric{metricStoreLatency, "Milliseconds"})
	}
	if m.WeChatCalls > 0 {
		attrs = append(attrs, slog.Float64(metricWeChatLatency, milliseconds(m.WeChat)))
		metrics = append(metrics, emfMetric{metricWeChatLatency, "Milliseconds"})
	}
	directives := []emfDirective{{Namespace: MetricNamespace, Dimensions: requestDimensions, Metrics: metrics}}
	// One directive per WeChat API: a dimension holds one value per line,
	// and one request may call several APIs (stable_token, then
	// getuserphonenumber). Counted, requests by <api>_errcode is how often
	// that API answered that errcode: 40001 storms, 45009 quota.
	for _, api := range slices.Sorted(maps.Keys(m.Errcodes)) {
		dim := api + errcodeSuffix
		attrs = append(attrs, slog.String(dim, strconv.Itoa(m.Errcodes[api])))
		directives = append(directives, emfDirective{
			Namespace: MetricNamespace, Dimensions: [][]string{{dim}}, Metrics: []emfMetric{{metricRequests, "Count"}},
		})
	}
	return append(attrs, slog.Any("_aws", emf{Timestamp: now.UnixMilli(), CloudWatchMetrics: directives}))
}

// milliseconds is d in milliseconds to the microsecond, as latency_ms is.
func milliseconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
