package session

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/reqlog"
)

// Longest getPhoneNumber code accepted; WeChat's are 64 characters or so.
const maxPhoneCodeLen = 512

// Phone is a user's phone number as WeChat hands it out for a getPhoneNumber
// code: the same object /decrypt returns for the legacy encrypted phone data.
// It is returned to the client, never stored or logged.
type Phone struct {
	// PhoneNumber carries the country code for numbers outside mainland China.
	PhoneNumber     string `json:"phoneNumber"`
	PurePhoneNumber string `json:"purePhoneNumber"`
	// CountryCode is always a string, though WeChat may send a number.
	CountryCode string         `json:"countryCode"`
	Watermark   PhoneWatermark `json:"watermark"`
}

// PhoneWatermark is WeChat's stamp on a phone number: the app it was issued
// for and when.
type PhoneWatermark struct {
	AppID     string `json:"appid"`
	Timestamp int64  `json:"timestamp"`
}

// LogValue keeps the number out of logs.
func (p Phone) LogValue() slog.Value {
	return slog.GroupValue(slog.String("countryCode", p.CountryCode), slog.String("watermark_appid", p.Watermark.AppID))
}

// String keeps the number out of fmt output.
func (p Phone) String() string {
	return "session.Phone{countryCode=" + p.CountryCode + ", number=[redacted]}"
}

// PhoneNumbers trades a getPhoneNumber code for the user's phone number, for
// the user openID of the app appID, with the app's shared access_token (a
// refused token replaced and the call retried once). Its errors are
// *apperr.Error values (invalid_phone_code, rate_limited,
// wechat_unavailable, store_unavailable).
type PhoneNumbers interface {
	PhoneNumber(ctx context.Context, appID, openID, code string) (Phone, error)
}

// AccessToken is an app's WeChat access_token. It is a secret: only the token
// function's response carries it.
type AccessToken struct {
	Value     string
	ExpiresAt time.Time
}

// LogValue keeps the token out of logs.
func (t AccessToken) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("expires_at", t.ExpiresAt))
}

// String keeps the token out of fmt output.
func (t AccessToken) String() string {
	return "session.AccessToken{value=[redacted], expires_at=" + t.ExpiresAt.Format(time.RFC3339) + "}"
}

// AccessTokens hands out an app's shared access_token. With refused set (a
// token WeChat refused), it returns the replacement: the current token when
// the refused one is already stale, else a fresh one after the store's row
// is dropped compare-and-swap.
type AccessTokens interface {
	AccessToken(ctx context.Context, appID, refused string) (AccessToken, error)
}

// WithPhoneNumbers lets the Service answer PhoneNumber.
func WithPhoneNumbers(p PhoneNumbers) Option { return func(s *Service) { s.phones = p } }

// WithAccessTokens lets the Service answer AccessToken.
func WithAccessTokens(t AccessTokens) Option { return func(s *Service) { s.tokens = t } }

// PhoneNumber checks the session an skey names, as Validate does (one store
// read in steady state), then trades the getPhoneNumber code read returns
// for the session user's phone number. read is called only for a request
// that carries an skey. A number stamped for another app is refused as
// wechat_unavailable: WeChat answered for the wrong app.
func (s *Service) PhoneNumber(ctx context.Context, skey string, read func() (string, error)) (Phone, error) {
	if err := requireSkey(skey); err != nil {
		return Phone{}, err
	}
	code, err := read()
	if err != nil {
		return Phone{}, err
	}
	if code == "" {
		return Phone{}, apperr.Errorf(apperr.InvalidRequest, "code is required: send {\"code\": <e.detail.code of the getPhoneNumber button>}")
	}
	if len(code) > maxPhoneCodeLen || strings.IndexFunc(code, notCodeRune) >= 0 {
		return Phone{}, apperr.Errorf(apperr.InvalidRequest, "code must be the string the getPhoneNumber button returned")
	}
	if s.phones == nil {
		return Phone{}, errorNotWired("phone numbers")
	}
	sess, err := s.validate(ctx, skey)
	if err != nil {
		return Phone{}, err
	}
	p, err := s.phones.PhoneNumber(ctx, s.set.AppID, sess.OpenID, code)
	if err != nil {
		return Phone{}, err
	}
	if p.Watermark.AppID != s.set.AppID {
		reqlog.Add(ctx, slog.String("phone_watermark_appid", p.Watermark.AppID))
		return Phone{}, apperr.Errorf(apperr.WeChatUnavailable, "WeChat answered with a phone number for another app")
	}
	return p, nil
}

// AccessToken returns the app's shared access_token; with refused set, the
// replacement for that token (see AccessTokens).
func (s *Service) AccessToken(ctx context.Context, refused string) (AccessToken, error) {
	if s.tokens == nil {
		return AccessToken{}, errorNotWired("access tokens")
	}
	return s.tokens.AccessToken(ctx, s.set.AppID, refused)
}

// errorNotWired is the internal error of a Service asked for what it was not
// built with (a wiring mistake, not a client's).
func errorNotWired(what string) error {
	return &apperr.Error{Code: apperr.Internal, Message: "internal error", Err: errNotWired(what)}
}

type errNotWired string

func (e errNotWired) Error() string { return "session: the service was built without " + string(e) }
