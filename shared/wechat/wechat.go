// Package wechat is a client for the WeChat APIs wxsession calls:
// sns/jscode2session, which trades a mini-program's login code for the user's
// openid, unionid and session_key; cgi-bin/stable_token, which hands out the
// app's access_token; and wxa/business/getuserphonenumber, which trades a
// getPhoneNumber code for the user's phone number.
package wechat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/reqlog"
)

// WeChat's errcodes for jscode2session that wxsession tells apart.
const (
	ErrcodeBusy        = -1    // system busy: worth one retry
	ErrcodeInvalidCode = 40029 // code unknown or expired
	ErrcodeCodeUsed    = 40163 // code already used
	ErrcodeHighRisk    = 40226 // high-risk user, login blocked
	ErrcodeRateLimited = 45011 // API minute-quota reached
)

// Defaults for a Client.
const (
	// DefaultAttemptTimeout bounds one HTTP attempt; the caller's deadline may
	// cut it shorter.
	DefaultAttemptTimeout = 3 * time.Second
	// minRetryBudget is the least time that must remain before the caller's
	// deadline for a retry on -1 to be worth starting.
	minRetryBudget = 500 * time.Millisecond
	retryDelay     = 100 * time.Millisecond
	// ReplyReserve is kept back from the caller's deadline for what follows
	// the WeChat call (writing the session or releasing the code claim, then
	// answering): a WeChat that hangs must not use up a Lambda invocation's
	// whole time, or the 502 would come after the runtime stopped listening.
	ReplyReserve = 300 * time.Millisecond
	// rateLimitRetryAfter is what a client is told to wait after 45011: the
	// quota is per minute.
	rateLimitRetryAfter = 60 * time.Second
	maxResponseBytes    = 64 << 10
)

// Session is what jscode2session returns for a valid code.
type Session struct {
	OpenID     string
	UnionID    string // empty unless the app is bound to an Open Platform account
	SessionKey string // base64, as WeChat sends it; a secret
}

// LogValue keeps the session_key out of logs.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("openid", s.OpenID), slog.Bool("unionid", s.UnionID != ""))
}

// Client calls WeChat's APIs: jscode2session for its own app, and
// stable_token and getuserphonenumber for whichever app the caller names. It
// is safe for concurrent use and meant to be built once per process, so
// connections are reused across invocations.
type Client struct {
	base     string
	endpoint string
	appID    string
	secret   string
	http     *http.Client
	// AttemptTimeout bounds each HTTP attempt (DefaultAttemptTimeout if zero).
	AttemptTimeout time.Duration
}

// NewClient returns a client for the API at base (https://api.weixin.qq.com in
// production). A nil httpClient gets one with a tuned transport.
func NewClient(base, appID, secret string, httpClient *http.Client) *Client {
	if httpClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		t.TLSHandshakeTimeout = 2 * time.Second
		t.ResponseHeaderTimeout = DefaultAttemptTimeout
		httpClient = &http.Client{Transport: t}
	}
	return &Client{
		base:           base,
		endpoint:       base + "/sns/jscode2session",
		appID:          appID,
		secret:         secret,
		http:           httpClient,
		AttemptTimeout: DefaultAttemptTimeout,
	}
}

// reply is jscode2session's JSON answer.
type reply struct {
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid"`
	SessionKey string `json:"session_key"`
	envelope
}

// Code2Session trades a login code for the user's session. Its errors are
// apperr.Errors: invalid_code, code_blocked, rate_limited or
// wechat_unavailable. WeChat's errcode and rid go to the request's log line.
func (c *Client) Code2Session(ctx context.Context, code string) (Session, error) {
	r, err := c.attempt(ctx, code)
	if err == nil && r.ErrCode == ErrcodeBusy && c.canRetry(ctx) {
		reqlog.Add(ctx, slog.Int("wechat_retry_after_errcode", r.ErrCode), slog.String("wechat_first_rid", r.requestID()))
		select {
		case <-time.After(retryDelay):
		case <-ctx.Done():
			return Session{}, apperr.Wrap(ctx.Err(), apperr.WeChatUnavailable, "WeChat did not answer in time")
		}
		r, err = c.attempt(ctx, code)
		if err == nil && r.ErrCode == ErrcodeCodeUsed {
			// The first attempt reached WeChat and used the code before
			// failing: the code is gone through no fault of the client.
			return Session{}, apperr.Wrap(fmt.Errorf("jscode2session retry: errcode %d after -1, rid %s", r.ErrCode, r.requestID()),
				apperr.WeChatUnavailable, "WeChat failed while using the login code; call wx.login again")
		}
	}
	if err != nil {
		return Session{}, err
	}
	reqlog.Add(ctx, slog.Int("wechat_errcode", r.ErrCode))
	if rid := r.requestID(); rid != "" {
		reqlog.Add(ctx, slog.String("wechat_rid", rid))
	}
	cause := fmt.Errorf("jscode2session: errcode %d (%s), rid %s", r.ErrCode, r.ErrMsg, r.requestID())
	switch r.ErrCode {
	case 0:
		if r.OpenID == "" || r.SessionKey == "" {
			return Session{}, apperr.Wrap(errors.New("jscode2session: answer without openid or session_key"),
				apperr.WeChatUnavailable, "WeChat gave an incomplete answer")
		}
		return Session{OpenID: r.OpenID, UnionID: r.UnionID, SessionKey: r.SessionKey}, nil
	case ErrcodeInvalidCode:
		return Session{}, apperr.Wrap(cause, apperr.InvalidCode, "the login code is invalid or expired; call wx.login again")
	case ErrcodeCodeUsed:
		return Session{}, apperr.Wrap(cause, apperr.InvalidCode, "the login code was already used; call wx.login again")
	case ErrcodeHighRisk:
		return Session{}, apperr.Wrap(cause, apperr.CodeBlocked, "WeChat blocked this login (high-risk user)")
	case ErrcodeRateLimited:
		return Session{}, &apperr.Error{Code: apperr.RateLimited, Message: "WeChat's login quota is used up for now; retry later",
			RetryAfter: rateLimitRetryAfter, Err: cause}
	default:
		return Session{}, apperr.Wrap(cause, apperr.WeChatUnavailable, "WeChat could not complete the login")
	}
}

// canRetry reports whether the caller's deadline leaves room for a retry.
func (c *Client) canRetry(ctx context.Context) bool { return canRetry(ctx) }

// attempt makes one HTTP call. Transport failures, HTTP errors and answers
// that are not JSON come back as wechat_unavailable errors.
func (c *Client) attempt(ctx context.Context, code string) (reply, error) {
	q := url.Values{
		"appid":      {c.appID},
		"secret":     {c.secret},
		"js_code":    {code},
		"grant_type": {"authorization_code"},
	}
	var r reply
	err := c.do(ctx, "jscode2session", "wechat", &r, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+"?"+q.Encode(), nil)
	})
	return r, err
}

// String keeps the secret out of fmt output.
func (c *Client) String() string {
	return "wechat.Client{appid=" + c.appID + ", secret=" + strconv.Quote("[redacted]") + "}"
}
