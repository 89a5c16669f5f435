package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxsession/wxsession/shared/apperr"
	"github.com/wxsession/wxsession/shared/reqlog"
)

// envelope is the errcode, errmsg and rid every WeChat answer may carry.
type envelope struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
	RID     string `json:"rid"`
}

// requestID returns WeChat's rid for the call: its own field when present,
// else the "rid: …" WeChat appends to errmsg.
func (r envelope) requestID() string {
	if r.RID != "" {
		return r.RID
	}
	if _, rid, ok := strings.Cut(r.ErrMsg, "rid: "); ok {
		return strings.TrimSpace(rid)
	}
	return ""
}

// errcode lets retryOnBusy read any answer's errcode.
func (r envelope) errcode() int { return r.ErrCode }

// do makes one HTTP call to the WeChat API named api and decodes its JSON
// answer into dst. The attempt is bounded by AttemptTimeout and by the
// caller's deadline less ReplyReserve; a call with no time left is not made.
// Its time (the body read included) and WeChat's errcode go to the
// request's measures, so every answer is counted, retries too. Transport
// failures, HTTP errors and answers that are not JSON come back as
// wechat_unavailable errors, with the request URL (which may carry a secret,
// a code or an access_token) stripped.
func (c *Client) do(ctx context.Context, api, logKey string, dst any, newRequest func(context.Context) (*http.Request, error)) error {
	timeout := c.AttemptTimeout
	if timeout <= 0 {
		timeout = DefaultAttemptTimeout
	}
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline)-ReplyReserve)
	}
	if timeout <= 0 {
		// Too late to ask: a code is left unspent for the client's retry.
		return apperr.Wrap(fmt.Errorf("%s: no time left before the caller's deadline", api),
			apperr.WeChatUnavailable, "WeChat did not answer in time")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := newRequest(ctx)
	if err != nil {
		return apperr.Wrap(fmt.Errorf("%s request: %w", api, redact(api, err)), apperr.WeChatUnavailable, "WeChat is unreachable")
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		reqlog.AddWeChatTime(ctx, time.Since(start))
		return apperr.Wrap(fmt.Errorf("%s: %w", api, redact(api, err)), apperr.WeChatUnavailable, "WeChat did not answer in time")
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	reqlog.AddWeChatTime(ctx, time.Since(start))
	if err != nil {
		return apperr.Wrap(fmt.Errorf("%s: read body: %w", api, redact(api, err)), apperr.WeChatUnavailable, "WeChat did not answer in time")
	}
	if resp.StatusCode != http.StatusOK {
		reqlog.Add(ctx, slog.Int(logKey+"_http_status", resp.StatusCode))
		return apperr.Wrap(fmt.Errorf("%s: HTTP %d", api, resp.StatusCode), apperr.WeChatUnavailable, "WeChat answered with an error")
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return apperr.Wrap(fmt.Errorf("%s: answer is not JSON (%d bytes): %w", api, len(body), err),
			apperr.WeChatUnavailable, "WeChat gave an unreadable answer")
	}
	if a, ok := dst.(interface{ errcode() int }); ok {
		reqlog.AddErrcode(ctx, api, a.errcode())
	}
	return nil
}

// postJSON makes one POST of body as JSON to url (see do).
func (c *Client) postJSON(ctx context.Context, api, logKey, url string, body, dst any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", api, err)
	}
	return c.do(ctx, api, logKey, dst, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(b)))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
}

// answer is a decoded WeChat answer whose errcode the retry can read.
type answer interface {
	errcode() int
	requestID() string
}

// retryOnBusy makes a call and, when WeChat answers -1 (system busy) and the
// caller's deadline leaves room, makes it once more; the first attempt's rid
// goes to the log line. It returns the last answer.
func retryOnBusy[T answer](ctx context.Context, logKey string, call func() (T, error)) (T, bool, error) {
	r, err := call()
	if err != nil || r.errcode() != ErrcodeBusy || !canRetry(ctx) {
		return r, false, err
	}
	reqlog.Add(ctx, slog.Int(logKey+"_retry_after_errcode", r.errcode()), slog.String(logKey+"_first_rid", r.requestID()))
	select {
	case <-time.After(retryDelay):
	case <-ctx.Done():
		return r, false, apperr.Wrap(ctx.Err(), apperr.WeChatUnavailable, "WeChat did not answer in time")
	}
	r, err = call()
	return r, true, err
}

// canRetry reports whether the caller's deadline leaves room for a retry.
func canRetry(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) >= minRetryBudget+retryDelay+ReplyReserve
}

// redact strips the request URL, which may carry the app secret, a code or
// an access_token, from transport errors before they can reach a log line.
func redact(api string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, api, ue.Err)
	}
	return err
}

// logErrcode puts WeChat's errcode and rid on the request's log line.
func logErrcode(ctx context.Context, logKey string, r envelope) {
	reqlog.Add(ctx, slog.Int(logKey+"_errcode", r.ErrCode))
	if rid := r.requestID(); rid != "" {
		reqlog.Add(ctx, slog.String(logKey+"_rid", rid))
	}
}
