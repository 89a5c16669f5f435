package api

import (
	"net/http"
	"time"

	"github.com/wxsession/wxsession/shared/session"
)

// PhoneNumber serves POST /phonenumber: the session user's phone number for a
// getPhoneNumber code.
func PhoneNumber(svc Service, opts ...Option) http.Handler {
	return newRouter(svc, opts, phoneNumberRoute)
}

// Token serves POST /token: the app's shared access_token, for the
// operator's own functions. It hands out the app's credential, so it is
// never part of All and never routed on a public API: a deployment invokes
// it directly (IAM on AWS, CAM on Tencent), the local server serves it on
// loopback only.
func Token(svc Service, opts ...Option) http.Handler { return newRouter(svc, opts, tokenRoute) }

var (
	phoneNumberRoute = route{http.MethodPost, "/phonenumber", phoneNumber}
	tokenRoute       = route{http.MethodPost, "/token", accessToken}
)

type phoneNumberRequest struct {
	Code string `json:"code"`
}

type phoneNumberResponse struct {
	Data session.Phone `json:"data"`
}

func phoneNumber(svc Service, w http.ResponseWriter, r *http.Request) error {
	// As for decrypt, the body is read only once the skey is known to be
	// there.
	p, err := svc.PhoneNumber(r.Context(), skeyFrom(r), func() (string, error) {
		var req phoneNumberRequest
		err := decodeBody(w, r, &req)
		return req.Code, err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, phoneNumberResponse{Data: p})
	return nil
}

type tokenRequest struct {
	// Refused is a token WeChat refused (40001, 42001, 40014), sent back for
	// its replacement.
	Refused string `json:"refused"`
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

func accessToken(svc Service, w http.ResponseWriter, r *http.Request) error {
	var req tokenRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	t, err := svc.AccessToken(r.Context(), req.Refused)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: t.Value, ExpiresIn: int64(time.Until(t.ExpiresAt) / time.Second)})
	return nil
}
