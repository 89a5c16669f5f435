package boot

import (
	"context"
	"fmt"
	"time"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/token"
	"github.com/wxsession/wxsession/shared/wechat"
)

// tokenOptions returns the session options that let a service answer phone
// numbers and hand out the app's access_token: one token.Manager for the
// process over st (when st keeps token rows, as every wxsession store does),
// fetching with cgi-bin/stable_token and the app's secret, sealing tokens
// with sealer (when not nil). Without a secret there is nothing to fetch
// with, and no option.
//
// With several apps, secrets holds each app's secret by appid: the one
// manager keeps one token per app, each fetched with its own app's secret.
func tokenOptions(st session.Store, wx *wechat.Client, secrets map[string]string, sealer token.Sealer) []session.Option {
	ts, ok := st.(token.Store)
	if !ok || len(secrets) == 0 {
		return nil
	}
	fetch := func(ctx context.Context, appID string) (string, time.Duration, error) {
		appSecret, ok := secrets[appID]
		if !ok {
			return "", 0, fmt.Errorf("boot: no secret for app %s", appID)
		}
		at, err := wx.StableToken(ctx, appID, appSecret)
		return at.Token, at.ExpiresIn, err
	}
	m := token.New(ts, fetch, token.Options{Sealer: sealer})
	return []session.Option{
		session.WithPhoneNumbers(phoneNumbers{m, wx}),
		session.WithAccessTokens(accessTokens{m}),
	}
}

// phoneNumbers adapts the token manager and the WeChat client to
// session.PhoneNumbers: getuserphonenumber on the shared token, the token
// replaced and the call retried when WeChat refuses it.
type phoneNumbers struct {
	tokens *token.Manager
	wx     *wechat.Client
}

func (p phoneNumbers) PhoneNumber(ctx context.Context, appID, openID, code string) (session.Phone, error) {
	var ph wechat.Phone
	err := p.tokens.Do(ctx, appID, func(tok string) error {
		var err error
		ph, err = p.wx.PhoneNumber(ctx, tok, code, openID)
		return err
	})
	if err != nil {
		return session.Phone{}, err
	}
	return session.Phone{
		PhoneNumber:     ph.PhoneNumber,
		PurePhoneNumber: ph.PurePhoneNumber,
		CountryCode:     ph.CountryCode,
		Watermark:       session.PhoneWatermark{AppID: ph.Watermark.AppID, Timestamp: ph.Watermark.Timestamp},
	}, nil
}

// accessTokens adapts the token manager to session.AccessTokens.
type accessTokens struct{ m *token.Manager }

func (a accessTokens) AccessToken(ctx context.Context, appID, refused string) (session.AccessToken, error) {
	var (
		t   token.Token
		err error
	)
	if refused == "" {
		t, err = a.m.Token(ctx, appID)
	} else {
		t, err = a.m.Refused(ctx, appID, refused)
	}
	return session.AccessToken{Value: t.Value, ExpiresAt: t.ExpiresAt}, err
}
