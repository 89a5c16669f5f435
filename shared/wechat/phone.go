package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/wxsession/wxsession/shared/apperr"
)

// Phone is the user's phone number as getuserphonenumber hands it out, in
// the shape wxsession answers it: the same object /decrypt returns for the
// legacy encrypted phone data. It is never stored or logged.
type Phone struct {
	// PhoneNumber carries the country code for numbers outside mainland China.
	PhoneNumber     string `json:"phoneNumber"`
	PurePhoneNumber string `json:"purePhoneNumber"`
	// CountryCode is always a string here, though WeChat may send a number.
	CountryCode string    `json:"countryCode"`
	Watermark   Watermark `json:"watermark"`
}

// Watermark is WeChat's stamp on the data: the app it was issued for and when.
// The caller checks that AppID is its app's.
type Watermark struct {
	AppID     string `json:"appid"`
	Timestamp int64  `json:"timestamp"`
}

// LogValue keeps the number out of logs.
func (p Phone) LogValue() slog.Value {
	return slog.GroupValue(slog.String("countryCode", p.CountryCode), slog.String("watermark_appid", p.Watermark.AppID))
}

// String keeps the number out of fmt output.
func (p Phone) String() string {
	return "wechat.Phone{countryCode=" + p.CountryCode + ", number=[redacted]}"
}

// phoneReply is getuserphonenumber's JSON answer.
type phoneReply struct {
	PhoneInfo *struct {
		PhoneNumber     string          `json:"phoneNumber"`
		PurePhoneNumber string          `json:"purePhoneNumber"`
		CountryCode     json.RawMessage `json:"countryCode"`
		Watermark       Watermark       `json:"watermark"`
	} `json:"phone_info"`
	envelope
}

// PhoneNumber trades a getPhoneNumber code (the button's e.detail.code) for
// the user's phone number, with the app's access token; openid is the
// session's user, which WeChat checks the code against. The caller checks the
// watermark's appid.
//
// Its errors are apperr.Errors: invalid_phone_code for a code WeChat refuses
// (40029 invalid or expired, 40163 used, 40013 another app's), rate_limited
// (45011, with RetryAfter), wechat_unavailable for the rest (-1 after one
// retry within the caller's deadline, a timeout, an unknown errcode). When
// WeChat refused the access token itself (40001, 42001, 40014), the error is
// wechat_unavailable caused by a *TokenRefusedError, so the token's holder can
// replace it and call again. WeChat's errcode and rid go to the request's log
// line; the token appears in no error and no log line.
func (c *Client) PhoneNumber(ctx context.Context, accessToken, code, openID string) (Phone, error) {
	endpoint := c.base + "/wxa/business/getuserphonenumber?" + url.Values{"access_token": {accessToken}}.Encode()
	body := map[string]string{"code": code, "openid": openID}
	r, retried, err := retryOnBusy(ctx, "wechat", func() (phoneReply, error) {
		var r phoneReply
		err := c.postJSON(ctx, "getuserphonenumber", "wechat", endpoint, body, &r)
		return r, err
	})
	if err != nil {
		return Phone{}, err
	}
	logErrcode(ctx, "wechat", r.envelope)
	// WeChat does not echo the token, but an errmsg must never be the way
	// one reaches a log line.
	errmsg := r.ErrMsg
	if accessToken != "" {
		errmsg = strings.ReplaceAll(errmsg, accessToken, "[redacted]")
	}
	cause := fmt.Errorf("getuserphonenumber: errcode %d (%s), rid %s", r.ErrCode, errmsg, r.requestID())
	switch {
	case r.ErrCode == 0:
		return r.phone()
	case retried && r.ErrCode == ErrcodeCodeUsed:
		// The first attempt reached WeChat and used the code before failing:
		// the code is gone through no fault of the client.
		return Phone{}, apperr.Wrap(fmt.Errorf("getuserphonenumber retry: errcode %d after -1, rid %s", r.ErrCode, r.requestID()),
			apperr.WeChatUnavailable, "WeChat failed while using the phone code; ask the user to tap the button again")
	case r.ErrCode == ErrcodeInvalidCode || r.ErrCode == ErrcodeCodeUsed || r.ErrCode == ErrcodeInvalidAppID:
		return Phone{}, apperr.Wrap(cause, apperr.InvalidPhoneCode, "the phone code is invalid, expired or already used; ask the user to tap the button again")
	case r.ErrCode == ErrcodeRateLimited:
		return Phone{}, &apperr.Error{Code: apperr.RateLimited, Message: "WeChat's phone number quota is used up for now; retry later",
			RetryAfter: rateLimitRetryAfter, Err: cause}
	case refusedToken(r.ErrCode):
		return Phone{}, apperr.Wrap(fmt.Errorf("getuserphonenumber: %w, rid %s", &TokenRefusedError{Errcode: r.ErrCode}, r.requestID()),
			apperr.WeChatUnavailable, "WeChat refused the app's access_token")
	default:
		return Phone{}, apperr.Wrap(cause, apperr.WeChatUnavailable, "WeChat could not give the phone number")
	}
}

// phone returns the answer's phone_info with countryCode as a string.
func (r phoneReply) phone() (Phone, error) {
	incomplete := apperr.Wrap(errors.New("getuserphonenumber: answer without a phone number"),
		apperr.WeChatUnavailable, "WeChat gave an incomplete answer")
	p := r.PhoneInfo
	if p == nil || p.PhoneNumber == "" {
		return Phone{}, incomplete
	}
	cc, err := countryCode(p.CountryCode)
	if err != nil {
		return Phone{}, apperr.Wrap(fmt.Errorf("getuserphonenumber: countryCode: %w", err), apperr.WeChatUnavailable, "WeChat gave an unreadable answer")
	}
	return Phone{PhoneNumber: p.PhoneNumber, PurePhoneNumber: p.PurePhoneNumber, CountryCode: cc, Watermark: p.Watermark}, nil
}

// countryCode reads countryCode as WeChat sends it, a string or a number
// (its own example has 86), as a string.
func countryCode(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", err
	}
	return n.String(), nil
}
