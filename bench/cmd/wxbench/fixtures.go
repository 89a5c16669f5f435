package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/dynamo"
	"github.com/wxsession/wxsession/shared/wechat"
)

// The app the functions run as; the seal key makes them seal session_keys as
// in production.
const (
	appID   = "wx1234567890abcdef"
	secret  = "0123456789abcdef0123456789abcdef"
	sealKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// fixtures are what the function processes need around them: the WeChat
// emulator, a DynamoDB Local table, and an in-process session service over
// the same table that makes sessions for the events.
type fixtures struct {
	root     string
	endpoint string
	table    string
	emu      *emulator.Emulator
	wxURL    string
	wxSrv    *httptest.Server
	client   *dynamodb.Client
	svc      *session.Service
	events   map[string]string // sample event files, by function
	// floorKey is the item the getitem floor function reads: validate's
	// session, so both read the same item.
	floorKey string
}

func newFixtures(ctx context.Context, root, endpoint string) (*fixtures, error) {
	f := &fixtures{root: root, endpoint: endpoint, table: "wxsession-bench-" + strings.ToLower(session.NewSkey()[:10])}
	f.emu = emulator.New(appID, secret)
	f.wxSrv = httptest.NewServer(f.emu)
	f.wxURL = f.wxSrv.URL
	f.client = dynamo.NewClient(dynamo.ClientOptions{
		Region: "us-east-1", Endpoint: endpoint,
		Credentials: aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"},
	})
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := dynamo.EnsureTable(tctx, f.client, f.table); err != nil {
		f.close()
		return nil, fmt.Errorf("DynamoDB Local at %s: %w", endpoint, err)
	}
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{
			"WX_APPID": appID, "WX_SECRET": secret, "WX_API_BASE": f.wxURL, "SESSION_SEAL_KEY": sealKey,
			"SESSION_STORE": "dynamodb", "SESSION_TABLE": f.table,
		}[k]
		return v, ok
	})
	if err != nil {
		f.close()
		return nil, err
	}
	f.svc, err = boot.NewService(cfg, dynamo.New(f.client, f.table, nil), wechat.NewClient(f.wxURL, appID, secret, nil))
	if err != nil {
		f.close()
		return nil, err
	}
	f.events = map[string]string{}
	for _, fn := range functions {
		b, err := os.ReadFile(filepath.Join(root, "events", "lambda", fn+"-httpapi.json")) //nolint:gosec // the repository's sample events
		if err != nil {
			f.close()
			return nil, err
		}
		f.events[fn] = string(b)
	}
	return f, nil
}

func (f *fixtures) close() { f.wxSrv.Close() }

// env is the environment of a function process on the Runtime API at addr,
// storing sessions in the fixtures' DynamoDB Local table.
func (f *fixtures) env(addr, name string) []string {
	return []string{
		"WX_APPID=" + appID, "WX_SECRET=" + secret, "WX_API_BASE=" + f.wxURL, "SESSION_SEAL_KEY=" + sealKey,
		"SESSION_STORE=dynamodb", "SESSION_TABLE=" + f.table,
		"AWS_ENDPOINT_URL_DYNAMODB=" + f.endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_SESSION_TOKEN=local",
		"AWS_LAMBDA_RUNTIME_API=" + addr, "AWS_LAMBDA_FUNCTION_NAME=wxsession-" + name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"FLOOR_KEY=" + f.floorKey, "TZ=UTC",
	}
}

// login makes a session for user through the in-process service (as the
// login function would) and returns its skey.
func (f *fixtures) login(ctx context.Context, user string) (string, error) {
	l, err := f.svc.Login(ctx, f.emu.Code(user))
	if err != nil {
		return "", fmt.Errorf("log %s in: %w", user, err)
	}
	return l.Skey, nil
}

// event fills a sample HTTP API event of events/lambda with values; they are
// JSON-safe (codes, skeys, base64).
func (f *fixtures) event(fn string, values map[string]string) []byte {
	s := f.events[fn]
	for k, v := range values {
		s = strings.ReplaceAll(s, "${"+k+"}", v)
	}
	return []byte(s)
}

// workload is what a function is invoked with: events to send, made before
// timing starts, and the status each must answer.
type workload struct {
	want   int
	events func(ctx context.Context, n int) ([][]byte, error)
}

// workloads returns each function's workload. Sessions for validate and
// decrypt are made once and used by every invocation (the steady state: no
// renewal is due); logout needs a fresh session per invocation, login a
// fresh code.
func (f *fixtures) workloads(ctx context.Context) (map[string]workload, error) {
	vSkey, err := f.login(ctx, "vera")
	if err != nil {
		return nil, err
	}
	f.floorKey = "s#" + session.SkeyHash(vSkey)
	dSkey, err := f.login(ctx, "dora")
	if err != nil {
		return nil, err
	}
	enc, err := f.emu.Encrypt(f.emu.OpenID("dora"), nil)
	if err != nil {
		return nil, err
	}
	repeat := func(ev []byte) func(context.Context, int) ([][]byte, error) {
		return func(_ context.Context, n int) ([][]byte, error) {
			out := make([][]byte, n)
			for i := range out {
				out[i] = ev
			}
			return out, nil
		}
	}
	return map[string]workload{
		"login": {http.StatusOK, func(_ context.Context, n int) ([][]byte, error) {
			out := make([][]byte, n)
			for i := range out {
				out[i] = f.event("login", map[string]string{"CODE": f.emu.Code("lena")})
			}
			return out, nil
		}},
		"validate": {http.StatusOK, repeat(f.event("validate", map[string]string{"SKEY": vSkey}))},
		"decrypt": {http.StatusOK, repeat(f.event("decrypt", map[string]string{
			"SKEY": dSkey, "ENCRYPTED_DATA": enc.EncryptedData, "IV": enc.IV,
		}))},
		"logout": {http.StatusNoContent, func(ctx context.Context, n int) ([][]byte, error) {
			out := make([][]byte, n)
			for i := range out {
				skey, err := f.login(ctx, "otto")
				if err != nil {
					return nil, err
				}
				out[i] = f.event("logout", map[string]string{"SKEY": skey})
			}
			return out, nil
		}},
		// The floor functions answer 200 to anything.
		"bare":    {http.StatusOK, repeat(f.event("validate", map[string]string{"SKEY": vSkey}))},
		"getitem": {http.StatusOK, repeat(f.event("validate", map[string]string{"SKEY": vSkey}))},
	}, nil
}

// proxyStatus reads the status of an HTTP API proxy response.
func proxyStatus(body []byte) (int, error) {
	var r struct {
		StatusCode int `json:"statusCode"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.StatusCode == 0 {
		return 0, fmt.Errorf("not a proxy response: %.200s", body)
	}
	return r.StatusCode, nil
}

// getItemRoundTrips times n strongly consistent GetItem calls on validate's
// session item over a warm connection, from this process, with gap idle
// between calls (none: back to back): the store round trip a warm validate
// cannot avoid.
func (f *fixtures) getItemRoundTrips(ctx context.Context, n int, gap time.Duration) ([]time.Duration, error) {
	in := &dynamodb.GetItemInput{
		TableName:      &f.table,
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: f.floorKey}},
		ConsistentRead: aws.Bool(true),
	}
	out := make([]time.Duration, 0, n)
	for i := range n + 10 {
		if gap > 0 {
			time.Sleep(gap)
		}
		t := time.Now()
		res, err := f.client.GetItem(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("GetItem: %w", err)
		}
		if len(res.Item) == 0 {
			return nil, fmt.Errorf("GetItem: validate's session %s is not in %s", f.floorKey, f.table)
		}
		if i >= 10 { // the first few warm the connection and the SDK up
			out = append(out, time.Since(t))
		}
	}
	return out, nil
}
