package functions_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/wxsession/wxsession/internal/openapitest"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	goredis "github.com/redis/go-redis/v9"

	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/dynamo"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// deployedFunctions are every function a deployment ships, the two that
// serve no sample event (phonenumber, token) included.
var deployedFunctions = append(append([]string(nil), functionNames...), "phonenumber", "token")

// phoneFleet is three phonenumber processes, a login process and a token
// process on one store, with a WeChat emulator in the test process.
type phoneFleet struct {
	emu    *emulator.Emulator
	appID  string
	login  string
	phones []string
	token  string
	procs  []*process
}

// newPhoneFleet starts the fleet with store (the SESSION_STORE variables) and
// an emulator made with opts, for an app of its own (so rows left by other
// tests are not this one's).
func newPhoneFleet(t *testing.T, store map[string]string, opts ...emulator.Option) *phoneFleet {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	f := &phoneFleet{appID: "wx" + hex.EncodeToString(b)}
	f.emu = emulator.New(f.appID, secret, opts...)
	srv := httptest.NewServer(f.emu)
	t.Cleanup(srv.Close)
	startOne := func(name string) string {
		port := freePort(t)
		env := functionEnv(srv.URL, map[string]string{"PORT": port, "WX_APPID": f.appID})
		for k, v := range store {
			env[k] = v
		}
		p := start(t, name, env)
		f.procs = append(f.procs, p)
		base := "http://127.0.0.1:" + port
		waitListening(t, p, base+"/")
		return base
	}
	f.login = startOne("login")
	for range 3 {
		f.phones = append(f.phones, startOne("phonenumber"))
	}
	f.token = startOne("token")
	return f
}

func (f *phoneFleet) stats() map[string]int { return f.emu.Stats() }

// post sends a JSON body and returns the status and body.
func post(t *testing.T, url, skey, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if skey != "" {
		req.Header.Set("Authorization", "Bearer "+skey)
	}
	// Every answer of the functions is checked against docs/openapi.yaml.
	resp, err := (&http.Client{Transport: openapitest.Transport(t, nil)}).Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", url, err)
		return 0, ""
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *phoneFleet) loginAs(t *testing.T, user string) string {
	t.Helper()
	status, body := post(t, f.login+"/login", "", `{"code":"`+f.emu.Code(user)+`"}`)
	var r struct{ Skey string }
	if status != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil || r.Skey == "" {
		t.Fatalf("login %s: got %d %s", user, status, body)
	}
	return r.Skey
}

var phoneUsers = []string{"alice", "bob", "carol"}

// phoneRound sends n concurrent phone requests, spread over the three
// phonenumber processes and the users, and checks each answer: 200 with the
// user's number, countryCode a string and the app's watermark.
func (f *phoneFleet) phoneRound(t *testing.T, skeys map[string]string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		user := phoneUsers[i%len(phoneUsers)]
		code := f.emu.PhoneCode(user)
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body := post(t, f.phones[i%len(f.phones)]+"/phonenumber", skeys[user], `{"code":"`+code+`"}`)
			var r struct {
				Data struct {
					PhoneNumber string `json:"phoneNumber"`
					CountryCode any    `json:"countryCode"`
					Watermark   struct {
						AppID string `json:"appid"`
					} `json:"watermark"`
				} `json:"data"`
			}
			if status != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil {
				t.Errorf("phonenumber %d (%s): got %d %s, want 200", i, user, status, body)
				return
			}
			if r.Data.PhoneNumber != f.emu.PhoneNumber(user) || r.Data.Watermark.AppID != f.appID {
				t.Errorf("phonenumber %d (%s): got %s, want %s's number stamped for %s", i, user, body, user, f.appID)
			}
			if _, ok := r.Data.CountryCode.(string); !ok {
				t.Errorf("phonenumber %d: countryCode %v is not a string", i, r.Data.CountryCode)
			}
		}()
	}
	wg.Wait()
}

// accessToken asks the token process for the token (or a refused one's
// replacement).
func (f *phoneFleet) accessToken(t *testing.T, refused string) string {
	t.Helper()
	body := `{}`
	if refused != "" {
		body = `{"refused":"` + refused + `"}`
	}
	status, out := post(t, f.token+"/token", "", body)
	var r struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(out), &r) != nil || r.AccessToken == "" || r.ExpiresIn <= 0 {
		t.Fatalf("POST /token %s: got %d %s", body, status, out)
	}
	return r.AccessToken
}

// checkLogs fails if any process's output holds a secret or a number.
func (f *phoneFleet) checkLogs(t *testing.T, tokens []string) {
	t.Helper()
	for _, p := range f.procs {
		out := p.stderr.String()
		for _, tok := range tokens {
			if strings.Contains(out, tok) {
				t.Errorf("%s logged an access_token", p.name)
			}
		}
		for _, u := range phoneUsers {
			if strings.Contains(out, f.emu.PhoneNumber(u)) {
				t.Errorf("%s logged %s's phone number", p.name, u)
			}
		}
	}
}

// TestPhoneAcrossProcesses runs phonenumber in three processes (plain HTTP)
// and the token function in a fourth, on one store, against one emulator:
// cold, dozens of concurrent phone requests cost one stable_token call
// between them; a revoked token is replaced once for all; /token with a
// stale refused token answers the current one without a fetch; the token is
// sealed at rest and in no log line.
func TestPhoneAcrossProcesses(t *testing.T) {
	t.Run("dynamodb", func(t *testing.T) {
		endpoint := storetest.ServerURL(t, "WXSESSION_DYNAMODB_URL")
		table, client := newTable(t, endpoint, "wxsession-phone-")
		store := map[string]string{"SESSION_STORE": "dynamodb", "SESSION_TABLE": table,
			"AWS_ENDPOINT_URL_DYNAMODB": endpoint, "AWS_REGION": "us-east-1",
			"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
		testPhoneAcrossProcesses(t, store, func(t *testing.T, appID string) string {
			out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "t#" + appID}}, ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for k, v := range out.Item {
				if sv, ok := v.(*types.AttributeValueMemberS); ok {
					fmt.Fprintf(&b, "%s=%s ", k, sv.Value)
				}
			}
			return b.String()
		})
	})
	t.Run("redis", func(t *testing.T) {
		redisURL := storetest.ServerURL(t, "WXSESSION_REDIS_URL")
		testPhoneAcrossProcesses(t, map[string]string{"SESSION_STORE": "redis", "REDIS_URL": redisURL}, func(t *testing.T, appID string) string {
			return redisDump(t, redisURL, appID)
		})
	})
}

func testPhoneAcrossProcesses(t *testing.T, store map[string]string, atRest func(t *testing.T, appID string) string) {
	f := newPhoneFleet(t, store)
	skeys := map[string]string{}
	for _, u := range phoneUsers {
		skeys[u] = f.loginAs(t, u)
	}

	// Cold: every process's cache is empty and the store has no token row.
	f.phoneRound(t, skeys, 36)
	if got := f.stats()["stable_token_calls"]; got != 1 {
		t.Errorf("cold: %d stable_token calls for 36 phone requests over 3 processes, want exactly 1", got)
	}
	t.Logf("cold: stats %v", f.stats())
	first := f.accessToken(t, "")
	if got := f.stats()["stable_token_calls"]; got != 1 {
		t.Errorf("/token after the phone requests: %d stable_token calls, want still 1 (the shared token)", got)
	}

	// Revoked: every request still succeeds; one new token between all.
	f.emu.RevokeToken("")
	f.phoneRound(t, skeys, 36)
	if got := f.stats()["stable_token_calls"]; got != 2 {
		t.Errorf("after revocation: %d stable_token calls in all, want 2 (one replacement for every instance)", got)
	}
	t.Logf("after revocation: stats %v", f.stats())

	// /token with the stale refused token: the current one, no fetch.
	current := f.accessToken(t, first)
	if current == first {
		t.Error("/token with a refused token handed it out again")
	}
	if got := f.stats()["stable_token_calls"]; got != 2 {
		t.Errorf("/token with a stale refused token: %d stable_token calls, want still 2 (no fetch)", got)
	}
	if again := f.accessToken(t, ""); again != current {
		t.Error("/token {} after the replacement: got another token than the current one")
	}
	if got := f.stats()["stable_token_forced_calls"]; got != 0 {
		t.Errorf("%d forced stable_token calls, want none", got)
	}

	// Sealed at rest; in no log line; the number in no log line either.
	row := atRest(t, f.appID)
	if !strings.Contains(row, "sealed:v1:") {
		t.Errorf("token row %q holds no sealed token", row)
	}
	for _, tok := range []string{first, current} {
		if strings.Contains(row, tok) {
			t.Error("the token row holds the access_token in plain text")
		}
	}
	f.checkLogs(t, []string{first, current})
}

// TestPhoneTokenRenewal issues tokens that live only a few seconds past
// WeChat's 5-minute overlap, so each is due for renewal almost at once:
// phone requests flow without a failure while the three processes renew
// ahead of expiry, one at a time (stable_token calls stay near one per
// token lifetime's fresh part, not one per process or request).
func TestPhoneTokenRenewal(t *testing.T) {
	redisURL := storetest.ServerURL(t, "WXSESSION_REDIS_URL")
	const fresh = 3 * time.Second
	f := newPhoneFleet(t, map[string]string{"SESSION_STORE": "redis", "REDIS_URL": redisURL},
		emulator.WithTokenLifetime(emulator.TokenOverlap+fresh))
	skeys := map[string]string{}
	for _, u := range phoneUsers {
		skeys[u] = f.loginAs(t, u)
	}
	begin := time.Now()
	rounds := 0
	for time.Since(begin) < 4*fresh {
		f.phoneRound(t, skeys, 9)
		rounds++
	}
	elapsed := time.Since(begin)
	calls := f.stats()["stable_token_calls"]
	t.Logf("renewal: %d stable_token calls over %s, %d rounds of 9 requests", calls, elapsed.Round(time.Millisecond), rounds)
	if calls < 2 {
		t.Errorf("%d stable_token calls over %s: the token was never renewed ahead of expiry", calls, elapsed)
	}
	// One renewal per fresh period, plus the first fetch and one at the end.
	if most := int(elapsed/fresh) + 2; calls > most {
		t.Errorf("%d stable_token calls over %s, want at most %d: renewals are not one at a time", calls, elapsed, most)
	}
}

// newTable creates a table of its own on DynamoDB Local, TTL on.
func newTable(t *testing.T, endpoint, prefix string) (string, *dynamodb.Client) {
	t.Helper()
	table := prefix + strings.ToLower(session.NewSkey()[:10])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := dynamo.NewClient(dynamo.ClientOptions{Region: "us-east-1", Endpoint: endpoint, Credentials: aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}})
	if err := dynamo.EnsureTable(ctx, client, table); err != nil {
		t.Fatalf("create table %s: %v", table, err)
	}
	return table, client
}

// redisDump returns every key of the app's token row and its fields.
func redisDump(t *testing.T, redisURL, appID string) string {
	t.Helper()
	opt, err := goredis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opt)
	defer func() { _ = rdb.Close() }()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*"+appID+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, k := range keys {
		switch typ, _ := rdb.Type(ctx, k).Result(); typ {
		case "hash":
			fmt.Fprintf(&b, "%s %v\n", k, rdb.HGetAll(ctx, k).Val())
		case "string":
			fmt.Fprintf(&b, "%s %s\n", k, rdb.Get(ctx, k).Val())
		}
	}
	return b.String()
}

// TestTokenFunctionInvoked invokes the token binary the way the deploy
// guides show an operator's function doing it: on Lambda with a minimal
// POST /token HTTP API 2.0 event (lambda:InvokeFunction), on SCF as an event
// function with an API gateway–shaped event (the Invoke API); then a phone
// code's route and the token function agree on one token.
func TestTokenFunctionInvoked(t *testing.T) {
	emu, wxBase := newEmulator(t)
	mem := map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "memory"}
	readToken := func(t *testing.T, a httpAnswer) string {
		t.Helper()
		a.want(t, http.StatusOK, "")
		var r struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int64  `json:"expires_in"`
		}
		if json.Unmarshal([]byte(a.body), &r) != nil || r.AccessToken == "" || r.ExpiresIn <= 0 {
			t.Fatalf("got %s, want {access_token, expires_in}", a.body)
		}
		return r.AccessToken
	}
	t.Run("Lambda", func(t *testing.T) {
		f := startLambda(t, "token", mem)
		ev := func(body string) []byte {
			b, _ := json.Marshal(map[string]any{
				"version": "2.0", "routeKey": "POST /token", "rawPath": "/token",
				"headers":        map[string]string{"content-type": "application/json"},
				"requestContext": map[string]any{"http": map[string]string{"method": "POST", "path": "/token"}},
				"body":           body, "isBase64Encoded": false,
			})
			return b
		}
		first := readToken(t, f.http(t, ev(`{}`)))
		if again := readToken(t, f.http(t, ev(`{}`))); again != first {
			t.Error("a second /token fetched another token")
		}
		emu.RevokeToken("")
		if next := readToken(t, f.http(t, ev(`{"refused":"`+first+`"}`))); next == first {
			t.Error("/token with the refused token handed it out again")
		}
	})
	t.Run("SCF event function", func(t *testing.T) {
		f := startSCF(t, "token", mem)
		b, _ := json.Marshal(map[string]any{"httpMethod": "POST", "path": "/token",
			"headers": map[string]string{"content-type": "application/json"}, "body": "{}"})
		readToken(t, f.invoke(t, b))
	})
}
