package awslambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/platform/awslambda"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/wechat"
)

// TestAuthorizersSeveralApps: the authorizers carry the event's app headers
// (X-WX-AppID, Referer) into /validate, put the app in the context, and deny
// an skey presented for another app or a request naming no app.
func TestAuthorizersSeveralApps(t *testing.T) {
	const (
		appA, appB = "wx00000000000000a1", "wx00000000000000b2"
	)
	emu := emulator.New(appA, "sa", emulator.WithApp(appB, "sb"))
	wx := httptest.NewServer(emu)
	defer wx.Close()
	cfg := config.Config{Apps: []config.App{{ID: appA, Secret: "sa"}, {ID: appB, Secret: "sb"}}, AppID: appA, Secret: "sa", TTL: time.Hour, MaxAge: 2 * time.Hour}
	svcs, err := boot.NewServices(cfg, memory.New(time.Now), func(a config.App) *wechat.Client {
		return wechat.NewClient(wx.URL, a.ID, a.Secret, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	login := api.Login(nil, api.WithApps(svcs))
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(`{"code":"`+emu.CodeIn(appB, "alice")+`"}`))
	req.Header.Set("X-WX-AppID", appB)
	rec := httptest.NewRecorder()
	login.ServeHTTP(rec, req)
	var l struct{ Skey, OpenID, UnionID string }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &l) != nil {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	h := awslambda.NewHandler(api.Validate(nil, api.WithApps(svcs)), awslambda.WithLogger(quietLogger()))
	bearer := "Bearer " + l.Skey
	want := `{"isAuthorized":true,"context":{"appid":"` + appB + `","openid":"` + l.OpenID + `","unionid":"` + l.UnionID + `"}}`
	for _, tt := range []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"header", map[string]string{"authorization": bearer, "x-wx-appid": appB}, want},
		{"referer", map[string]string{"authorization": bearer, "referer": "https://servicewechat.com/" + appB + "/7/page-frame.html"}, want},
		{"another app", map[string]string{"authorization": bearer, "x-wx-appid": appA}, `{"isAuthorized":false}`},
		{"no app", map[string]string{"authorization": bearer}, `{"isAuthorized":false}`},
	} {
		if got := string(invoke(t, h, authorizerEvent(tt.headers))); got != tt.want {
			t.Errorf("HTTP API, %s: got %s, want %s", tt.name, got, tt.want)
		}
	}
	// REST API REQUEST authorizer: Allow with the app in the context.
	got := string(invoke(t, h, requestAuthorizerEvent(map[string]string{"Authorization": bearer, "X-WX-AppID": appB}, nil)))
	var resp struct {
		Context        map[string]any `json:"context"`
		PolicyDocument struct {
			Statement []struct{ Effect string } `json:"Statement"`
		} `json:"policyDocument"`
	}
	if err := json.Unmarshal([]byte(got), &resp); err != nil || len(resp.PolicyDocument.Statement) != 1 ||
		resp.PolicyDocument.Statement[0].Effect != "Allow" || resp.Context["appid"] != appB {
		t.Errorf("REST REQUEST: got %s, want Allow with appid %s", got, appB)
	}
	// Another app's skey is an expired session there: Unauthorized (401).
	if _, err := h.Invoke(context.Background(), []byte(requestAuthorizerEvent(map[string]string{"Authorization": bearer, "X-WX-AppID": appA}, nil))); !errors.Is(err, awslambda.ErrUnauthorized) {
		t.Errorf("REST REQUEST, another app: got %v, want Unauthorized", err)
	}
}
