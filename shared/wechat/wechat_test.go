package wechat_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/reqlog"
	"github.com/wxsession/wxsession/shared/wechat"
)

const (
	appID  = "wx0123456789abcdef"
	secret = "s3cr3t-app-secret-value"
)

func setup(t *testing.T) (*emulator.Emulator, *wechat.Client) {
	t.Helper()
	emu := emulator.New(appID, secret)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	c := wechat.NewClient(srv.URL, appID, secret, nil)
	c.AttemptTimeout = 300 * time.Millisecond
	return emu, c
}

func TestCode2Session(t *testing.T) {
	emu, c := setup(t)
	code := emu.Code("alice")
	s, err := c.Code2Session(context.Background(), code)
	if err != nil {
		t.Fatalf("Code2Session: %v", err)
	}
	if s.OpenID != emu.OpenID("alice") || s.UnionID == "" {
		t.Fatalf("got openid %q unionid %q, want alice's openid and a unionid", s.OpenID, s.UnionID)
	}
	if key, _ := emu.SessionKey(s.OpenID); key != s.SessionKey {
		t.Fatalf("got a session_key that is not the user's current one")
	}
	if emu.Calls() != 1 {
		t.Fatalf("WeChat called %d times, want 1", emu.Calls())
	}
}

func TestCode2SessionErrors(t *testing.T) {
	tests := []struct {
		name       string
		fault      *emulator.Fault
		code       func(*emulator.Emulator) string
		useFirst   bool // trade the code once before the call under test
		want       apperr.Code
		wantCalls  int
		retryAfter bool
	}{
		{name: "unknown code", code: func(*emulator.Emulator) string { return "no-such-code" }, want: apperr.InvalidCode, wantCalls: 1},
		{name: "used code", useFirst: true, want: apperr.InvalidCode, wantCalls: 2},
		{name: "40029", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40029}, want: apperr.InvalidCode, wantCalls: 1},
		{name: "40163", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40163}, want: apperr.InvalidCode, wantCalls: 1},
		{name: "40226 high-risk user", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40226}, want: apperr.CodeBlocked, wantCalls: 1},
		{name: "45011 rate limited", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 45011}, want: apperr.RateLimited, wantCalls: 1, retryAfter: true},
		{name: "-1 twice", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1}, want: apperr.WeChatUnavailable, wantCalls: 2},
		{name: "-1 then the code is gone", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1, Times: 1, ConsumeCode: true}, want: apperr.WeChatUnavailable, wantCalls: 2},
		{name: "unknown errcode", fault: &emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40013}, want: apperr.WeChatUnavailable, wantCalls: 1},
		{name: "hang", fault: &emulator.Fault{Mode: emulator.FaultHang}, want: apperr.WeChatUnavailable, wantCalls: 1},
		{name: "HTTP 500", fault: &emulator.Fault{Mode: emulator.FaultHTTPError}, want: apperr.WeChatUnavailable, wantCalls: 1},
		{name: "HTTP 404", fault: &emulator.Fault{Mode: emulator.FaultHTTPError, Status: 404}, want: apperr.WeChatUnavailable, wantCalls: 1},
		{name: "not JSON", fault: &emulator.Fault{Mode: emulator.FaultGarbage}, want: apperr.WeChatUnavailable, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu, c := setup(t)
			code := emu.Code("alice")
			if tt.code != nil {
				code = tt.code(emu)
			}
			if tt.useFirst {
				if _, err := c.Code2Session(context.Background(), code); err != nil {
					t.Fatalf("first use: %v", err)
				}
			}
			emu.SetFault(tt.fault)
			_, err := c.Code2Session(context.Background(), code)
			if got := apperr.CodeOf(err); got != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
			if emu.Calls() != tt.wantCalls {
				t.Fatalf("WeChat called %d times, want %d", emu.Calls(), tt.wantCalls)
			}
			if e := asAppErr(err); tt.retryAfter != (e.RetryAfter > 0) {
				t.Fatalf("RetryAfter = %s, want it set: %v", e.RetryAfter, tt.retryAfter)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), code) {
				t.Fatalf("error %q leaks the secret or the code", err)
			}
		})
	}
}

func asAppErr(err error) *apperr.Error {
	var e *apperr.Error
	if !errors.As(err, &e) {
		return &apperr.Error{}
	}
	return e
}

func TestRetryOnBusy(t *testing.T) {
	emu, c := setup(t)
	emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1, Times: 1})
	ctx, fields := reqlog.NewContext(context.Background())
	s, err := c.Code2Session(ctx, emu.Code("alice"))
	if err != nil {
		t.Fatalf("got %v, want the retry to succeed", err)
	}
	if s.OpenID == "" || emu.Calls() != 2 {
		t.Fatalf("got openid %q after %d calls, want a session after 2", s.OpenID, emu.Calls())
	}
	if !hasAttr(fields, "wechat_first_rid") {
		t.Fatalf("the first attempt's rid is not in the log fields: %v", fields.Attrs())
	}
}

func TestNoRetryWhenDeadlineIsNear(t *testing.T) {
	emu, c := setup(t)
	emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1, Times: 1})
	// Time for one attempt (past ReplyReserve), not for a retry.
	ctx, cancel := context.WithTimeout(context.Background(), wechat.ReplyReserve+400*time.Millisecond)
	defer cancel()
	_, err := c.Code2Session(ctx, emu.Code("alice"))
	if apperr.CodeOf(err) != apperr.WeChatUnavailable || emu.Calls() != 1 {
		t.Fatalf("got %v after %d calls, want wechat_unavailable after 1 (no time to retry)", err, emu.Calls())
	}
}

func TestHangHonoursCallerDeadline(t *testing.T) {
	emu, c := setup(t)
	c.AttemptTimeout = 10 * time.Second
	emu.SetFault(&emulator.Fault{Mode: emulator.FaultHang})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := c.Code2Session(ctx, emu.Code("alice")); done <- err }()
	select {
	case err := <-done:
		if apperr.CodeOf(err) != apperr.WeChatUnavailable {
			t.Fatalf("got %v, want wechat_unavailable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Code2Session ignored the caller's deadline")
	}
}

// TestHangLeavesReplyReserve checks that a hanging WeChat is given up on
// ReplyReserve before the caller's deadline, so the 502 still reaches a
// Lambda runtime that stops listening at the deadline, and that a call with
// no time left is not made at all (the code stays unspent).
func TestHangLeavesReplyReserve(t *testing.T) {
	emu, c := setup(t)
	c.AttemptTimeout = 10 * time.Second
	emu.SetFault(&emulator.Fault{Mode: emulator.FaultHang})
	deadline := time.Now().Add(wechat.ReplyReserve + 500*time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_, err := c.Code2Session(ctx, emu.Code("alice"))
	// Generous: the point is that the call ends well before the deadline.
	if left := time.Until(deadline); apperr.CodeOf(err) != apperr.WeChatUnavailable || left < wechat.ReplyReserve/2 {
		t.Fatalf("got %v with %v left before the deadline, want wechat_unavailable with about %v left", err, left, wechat.ReplyReserve)
	}

	emu.SetFault(nil)
	calls := emu.Calls()
	ctx, cancel = context.WithTimeout(context.Background(), wechat.ReplyReserve/2)
	defer cancel()
	if _, err := c.Code2Session(ctx, emu.Code("alice")); apperr.CodeOf(err) != apperr.WeChatUnavailable || emu.Calls() != calls {
		t.Fatalf("with no time left got %v after %d calls, want wechat_unavailable without calling WeChat", err, emu.Calls()-calls)
	}
}

func TestLogFieldsCarryErrcodeAndRID(t *testing.T) {
	emu, c := setup(t)
	emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: 40226})
	ctx, fields := reqlog.NewContext(context.Background())
	_, _ = c.Code2Session(ctx, emu.Code("alice"))
	if !hasAttr(fields, "wechat_errcode") || !hasAttr(fields, "wechat_rid") {
		t.Fatalf("log fields %v lack wechat_errcode or wechat_rid", fields.Attrs())
	}
}

func hasAttr(f *reqlog.Fields, key string) bool {
	for _, a := range f.Attrs() {
		if a.Key == key {
			return true
		}
	}
	return false
}

// TestMeasures checks that every answer of every API reaches the request's
// measures: its time, and its errcode under the API's name, a refusal
// outliving the success that follows it.
func TestMeasures(t *testing.T) {
	emu, c := setup(t)
	ctx, fields := reqlog.NewContext(context.Background())
	emu.SetFault(&emulator.Fault{Mode: emulator.FaultErrCode, ErrCode: -1, Times: 1})
	if _, err := c.Code2Session(ctx, emu.Code("alice")); err != nil {
		t.Fatalf("Code2Session after one -1: %v", err)
	}
	emu.SetFault(&emulator.Fault{API: emulator.APIStableToken, Mode: emulator.FaultErrCode, ErrCode: 45009, Times: 1})
	if _, err := c.StableToken(ctx, appID, secret); err == nil {
		t.Fatal("StableToken with 45009: no error")
	}
	tok, err := c.StableToken(ctx, appID, secret)
	if err != nil {
		t.Fatalf("StableToken: %v", err)
	}
	emu.SetFault(&emulator.Fault{API: emulator.APIPhoneNumber, Mode: emulator.FaultErrCode, ErrCode: 40001, Times: 1})
	if _, err := c.PhoneNumber(ctx, tok.Token, emu.PhoneCode("alice"), emu.OpenID("alice")); err == nil {
		t.Fatal("PhoneNumber with 40001: no error")
	}
	m := fields.Measures()
	// jscode2session -1 then 0, stable_token 45009 then 0, getuserphonenumber 40001.
	want := map[string]int{"jscode2session": -1, "stable_token": 45009, "getuserphonenumber": 40001}
	if fmt.Sprint(m.Errcodes) != fmt.Sprint(want) {
		t.Errorf("errcodes %v, want %v", m.Errcodes, want)
	}
	if m.WeChatCalls != 5 || m.WeChat <= 0 {
		t.Errorf("%d WeChat calls taking %s measured, want 5 taking some time", m.WeChatCalls, m.WeChat)
	}
	if m.StoreCalls != 0 {
		t.Errorf("%d store calls measured, want none", m.StoreCalls)
	}
}
