// Package reqlog gathers what one request's log line says: the attributes
// layers add, the error the request ended with, and the measures its
// metrics come from (time in the store and in WeChat, WeChat's errcodes).
//
// The HTTP layer writes exactly one line per request. Layers below it add what
// they learn (WeChat's errcode and rid, say) to the request's context instead
// of logging on their own, so a request reads as one line and no layer needs a
// logger just to report a detail.
package reqlog

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"
)

// Fields collects attributes for one request's log line, and the error it
// ended with. It is safe for concurrent use.
type Fields struct {
	mu       sync.Mutex
	attrs    []slog.Attr
	err      error
	measures Measures
}

type key struct{}

// NewContext returns a context carrying a fresh Fields, and that Fields.
func NewContext(ctx context.Context) (context.Context, *Fields) {
	f := &Fields{}
	return context.WithValue(ctx, key{}, f), f
}

func fieldsOf(ctx context.Context) *Fields {
	f, _ := ctx.Value(key{}).(*Fields)
	return f
}

// Add appends attributes to the log line of the request ctx belongs to; it
// does nothing when ctx carries no Fields.
func Add(ctx context.Context, attrs ...slog.Attr) {
	f := fieldsOf(ctx)
	if f == nil {
		return
	}
	f.mu.Lock()
	f.attrs = append(f.attrs, attrs...)
	f.mu.Unlock()
}

// Attrs returns the attributes added so far.
func (f *Fields) Attrs() []slog.Attr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slog.Attr(nil), f.attrs...)
}

// SetError records err as the error the request ctx belongs to ended with; it
// does nothing when ctx carries no Fields.
func SetError(ctx context.Context, err error) {
	f := fieldsOf(ctx)
	if f == nil {
		return
	}
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// Err returns the error recorded by SetError, if any.
func (f *Fields) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Measures are what one request spent waiting on the session store and on
// WeChat, and what WeChat answered: the figures its log line reports as
// metrics.
type Measures struct {
	// Store is the time spent in session store calls, StoreCalls how many
	// were made.
	Store      time.Duration
	StoreCalls int
	// WeChat is the time spent in HTTP calls to WeChat, WeChatCalls how
	// many were made.
	WeChat      time.Duration
	WeChatCalls int
	// Errcodes maps each WeChat API that answered (jscode2session,
	// stable_token, getuserphonenumber) to its errcode: the last non-zero
	// one when it answered more than once (a refused token, then its
	// replacement's success, counts as the refusal), else 0.
	Errcodes map[string]int
}

// AddStoreTime adds d, the time one session store call took, to the request
// ctx belongs to; it does nothing when ctx carries no Fields.
func AddStoreTime(ctx context.Context, d time.Duration) {
	measure(ctx, func(m *Measures) { m.Store += d; m.StoreCalls++ })
}

// AddWeChatTime adds d, the time one HTTP call to WeChat took, to the
// request ctx belongs to; it does nothing when ctx carries no Fields.
func AddWeChatTime(ctx context.Context, d time.Duration) {
	measure(ctx, func(m *Measures) { m.WeChat += d; m.WeChatCalls++ })
}

// AddErrcode records that the WeChat API api answered errcode in the
// request ctx belongs to; it does nothing when ctx carries no Fields.
func AddErrcode(ctx context.Context, api string, errcode int) {
	measure(ctx, func(m *Measures) {
		if m.Errcodes == nil {
			m.Errcodes = make(map[string]int)
		}
		if prev, ok := m.Errcodes[api]; !ok || errcode != 0 || prev == 0 {
			m.Errcodes[api] = errcode
		}
	})
}

// measure updates the measures of the request ctx belongs to, if any.
func measure(ctx context.Context, update func(*Measures)) {
	if f := fieldsOf(ctx); f != nil {
		f.mu.Lock()
		update(&f.measures)
		f.mu.Unlock()
	}
}

// Measures returns the request's measures so far.
func (f *Fields) Measures() Measures {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.measures
	m.Errcodes = maps.Clone(m.Errcodes)
	return m
}
