// Package reqlog gathers what one request's log line says: the attributes
// layers add and the error the request ended with.
//
// The HTTP layer writes exactly one line per request. Layers below it add what
// they learn (WeChat's errcode and rid, say) to the request's context instead
// of logging on their own, so a request reads as one line and no layer needs a
// logger just to report a detail.
package reqlog

import (
	"context"
	"log/slog"
	"sync"
)

// Fields collects attributes for one request's log line, and the error it
// ended with. It is safe for concurrent use.
type Fields struct {
	mu    sync.Mutex
	attrs []slog.Attr
	err   error
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
