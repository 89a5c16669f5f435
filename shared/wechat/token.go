package wechat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
)

// WeChat's errcodes for stable_token and for an access_token WeChat refuses,
// that wxsession tells apart.
const (
	ErrcodeInvalidCredential = 40001 // access_token invalid or not the latest (also a bad secret on cgi-bin/token)
	ErrcodeInvalidToken      = 40014 // not an access_token
	ErrcodeTokenExpired      = 42001 // access_token expired
	ErrcodeInvalidAppID      = 40013 // appid unknown (or, on getuserphonenumber, the code is another app's)
	ErrcodeInvalidSecret     = 40125 // app secret refused
	ErrcodeIPNotAllowed      = 40164 // caller's IP not on the app's allow-list (IP白名单)
	ErrcodeDailyQuota        = 45009 // API daily quota reached
)

// AccessToken is an app's access_token as cgi-bin/stable_token hands it out.
// It is a secret: it never goes into a log line or an error.
type AccessToken struct {
	Token string
	// ExpiresIn is how long WeChat will accept the token from the answer on.
	ExpiresIn time.Duration
}

// LogValue keeps the token out of logs.
func (t AccessToken) LogValue() slog.Value {
	return slog.GroupValue(slog.Duration("expires_in", t.ExpiresIn))
}

// String keeps the token out of fmt output.
func (t AccessToken) String() string {
	return "wechat.AccessToken{token=" + strconv.Quote("[redacted]") + ", expires_in=" + t.ExpiresIn.String() + "}"
}

// stableTokenReply is stable_token's JSON answer.
type stableTokenReply struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	envelope
}

// StableToken fetches the app's access_token from cgi-bin/stable_token in
// normal mode (force_refresh false): while the current token has more than
// five minutes left WeChat hands it out again, after that the next one, and
// every holder's token stays valid until it expires. wxsession never forces
// a refresh (it would revoke the token every other instance holds) and never
// calls the older cgi-bin/token (which does the same).
//
// Every failure is a wechat_unavailable error: a bad secret (40125), an IP
// not on the app's allow-list (40164), an exhausted quota (45009, 45011), -1
// after one retry within the caller's deadline, a timeout. WeChat's errcode
// and rid go to the request's log line as wechat_token_errcode and
// wechat_token_rid.
func (c *Client) StableToken(ctx context.Context, appID, secret string) (AccessToken, error) {
	body := map[string]any{"grant_type": "client_credential", "appid": appID, "secret": secret, "force_refresh": false}
	r, _, err := retryOnBusy(ctx, "wechat_token", func() (stableTokenReply, error) {
		var r stableTokenReply
		err := c.postJSON(ctx, "stable_token", "wechat_token", c.base+"/cgi-bin/stable_token", body, &r)
		return r, err
	})
	if err != nil {
		return AccessToken{}, err
	}
	logErrcode(ctx, "wechat_token", r.envelope)
	if r.ErrCode == 0 {
		if r.AccessToken == "" || r.ExpiresIn <= 0 {
			return AccessToken{}, apperr.Wrap(errors.New("stable_token: answer without access_token or expires_in"),
				apperr.WeChatUnavailable, "WeChat gave an incomplete answer")
		}
		return AccessToken{Token: r.AccessToken, ExpiresIn: time.Duration(r.ExpiresIn) * time.Second}, nil
	}
	cause := fmt.Errorf("stable_token: errcode %d (%s), rid %s", r.ErrCode, r.ErrMsg, r.requestID())
	msg := "WeChat did not hand out the app's access_token"
	switch r.ErrCode {
	case ErrcodeInvalidSecret:
		msg = "WeChat refused the app secret"
	case ErrcodeIPNotAllowed:
		msg = "this server's IP address is not on the app's IP allow-list"
	case ErrcodeDailyQuota, ErrcodeRateLimited:
		msg = "the app's access_token quota is used up for now"
	}
	return AccessToken{}, apperr.Wrap(cause, apperr.WeChatUnavailable, msg)
}

// TokenRefusedError is the cause of the error a call returns when WeChat
// refused its access_token (40001 not valid or not the latest, 42001
// expired, 40014 not a token): the holder replaces the token and tries once
// more.
type TokenRefusedError struct {
	Errcode int
}

// Error says which refusal it was, without the token.
func (e *TokenRefusedError) Error() string {
	return fmt.Sprintf("WeChat refused the access_token (errcode %d)", e.Errcode)
}

// TokenRefused reports that the token was refused. Callers recognise the
// error by this method (errors.As to interface{ TokenRefused() bool }), so
// the token manager needs no import of this package.
func (e *TokenRefusedError) TokenRefused() bool { return true }

// refusedToken reports whether errcode means WeChat refused the access_token.
func refusedToken(errcode int) bool {
	switch errcode {
	case ErrcodeInvalidCredential, ErrcodeTokenExpired, ErrcodeInvalidToken:
		return true
	}
	return false
}
