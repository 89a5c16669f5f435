package awslambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wxsession/wxsession/shared/platform/awslambda"
)

// TestOnePassDecode checks the adapter's one-pass decode against the path it
// replaced, which read each event as its kind's aws-lambda-go type: every
// event must reach the handler as the same request and get the same answer
// both ways. The typed path is forced by adding a field the one-pass struct
// cannot take (a number where it reads a string or an object) but the kind's
// type does not read at all.
func TestOnePassDecode(t *testing.T) {
	var mu sync.Mutex
	var seen string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		slices.Sort(names)
		var hs []string
		for _, k := range names {
			hs = append(hs, k+"="+strings.Join(r.Header[k], "|"))
		}
		mu.Lock()
		seen = fmt.Sprintf("%s %s raw=%q host=%s remote=%s headers=%v body=%q", r.Method, r.URL.String(), r.URL.RawPath, r.Host, r.RemoteAddr, hs, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		_, _ = io.WriteString(w, `{"openid":"o-1","unionid":"u-1"}`)
	})
	a := awslambda.NewHandler(h, awslambda.WithLogger(quietLogger()))

	payloads := map[string]string{}
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "events", "lambda", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events: %v", err)
	}
	fill := strings.NewReplacer("${SKEY}", strings.Repeat("k", 43), "${CODE}", "0a1b2c3d4e5f", "${ENCRYPTED_DATA}", "AAAA", "${IV}", "BBBB")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		payloads[filepath.Base(f)] = fill.Replace(string(b))
	}
	payloads["v2 on a named stage, with cookies and a query"] = `{"version":"2.0","rawPath":"/prod/validate","rawQueryString":"a=1&b=%20","cookies":["c=1","d=2"],"headers":{"authorization":"Bearer x","x-forwarded-for":"203.0.113.1"},"requestContext":{"domainName":"api.example.com","requestId":"r-1","stage":"prod","http":{"method":"GET","sourceIp":"203.0.113.1"}}}`
	payloads["v2 with a base64 body"] = `{"version":"2.0","rawPath":"/login","headers":{"content-type":"application/json"},"body":"eyJjb2RlIjoieCJ9","isBase64Encoded":true,"requestContext":{"http":{"method":"POST"}}}`
	payloads["v1 with single-value query and headers only"] = `{"httpMethod":"GET","path":"/validate","headers":{"Authorization":"Bearer y"},"queryStringParameters":{"q":"a b"},"requestContext":{"requestId":"r-2","identity":{"sourceIp":"198.51.100.7"}}}`
	payloads["v1 with multi-value headers and query"] = `{"httpMethod":"POST","path":"/logout","headers":{"X-WX-Skey":"z"},"multiValueHeaders":{"X-WX-Skey":["z"],"Accept":["a","b"]},"multiValueQueryStringParameters":{"q":["1","2"]},"requestContext":{"identity":{"sourceIp":"198.51.100.7"}}}`
	payloads["authorizer without requestContext.http"] = `{"version":"2.0","type":"REQUEST","routeArn":"arn:aws:execute-api:x","headers":{"authorization":"Bearer w"},"requestContext":{"requestId":"r-3"}}`

	for name, payload := range payloads {
		t.Run(name, func(t *testing.T) {
			onePass, seenOnePass := invokeRecording(t, a, &mu, &seen, payload)
			typed, seenTyped := invokeRecording(t, a, &mu, &seen, poisoned(t, payload))
			if seenOnePass != seenTyped {
				t.Errorf("the handler saw\n  %s\none pass, and\n  %s\nthrough the typed path", seenOnePass, seenTyped)
			}
			if onePass != typed {
				t.Errorf("answered\n  %s\none pass, and\n  %s\nthrough the typed path", onePass, typed)
			}
		})
	}
}

func invokeRecording(t *testing.T, a *awslambda.Handler, mu *sync.Mutex, seen *string, payload string) (string, string) {
	t.Helper()
	mu.Lock()
	*seen = "(nothing)"
	mu.Unlock()
	out, err := a.Invoke(context.Background(), []byte(payload))
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return string(out), *seen
}

// poisoned adds to payload a field of the wrong type for the one-pass struct
// that its kind's aws-lambda-go type does not read.
func poisoned(t *testing.T, payload string) string {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		t.Fatal(err)
	}
	switch {
	case ev["type"] == "REQUEST":
		ev["path"] = 5 // the authorizer type has no path
	case ev["version"] == "2.0":
		ev["multiValueHeaders"] = 5 // HTTP API events have none
	default:
		ev["rawPath"] = 5 // REST API events have none
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
