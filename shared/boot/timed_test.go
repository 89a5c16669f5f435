package boot

import (
	"context"
	"reflect"
	"testing"

	"github.com/wxsession/wxsession/shared/reqlog"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/memory"
	"github.com/wxsession/wxsession/shared/token"
)

// TestEveryStoreCallIsTimed calls every method of session.Store and
// token.Store through the timing wrapper and checks each one adds a store
// call to the request's measures: a method added to either interface and
// not timed here fails this test.
func TestEveryStoreCallIsTimed(t *testing.T) {
	st := timeStore(memory.New(nil))
	if _, ok := st.(token.Store); !ok {
		t.Fatal("the timed memory store is no token.Store")
	}
	for _, iface := range []reflect.Type{reflect.TypeFor[session.Store](), reflect.TypeFor[token.Store]()} {
		for i := range iface.NumMethod() {
			m := iface.Method(i)
			t.Run(iface.String()+"."+m.Name, func(t *testing.T) {
				ctx, fields := reqlog.NewContext(context.Background())
				method := reflect.ValueOf(st).MethodByName(m.Name)
				args := []reflect.Value{reflect.ValueOf(ctx)}
				for j := 1; j < m.Type.NumIn(); j++ {
					args = append(args, reflect.Zero(m.Type.In(j)))
				}
				method.Call(args)
				if got := fields.Measures().StoreCalls; got != 1 {
					t.Errorf("%s: %d store calls measured, want 1", m.Name, got)
				}
			})
		}
	}
}
