package reqlog

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestMeasures(t *testing.T) {
	ctx, f := NewContext(context.Background())
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			AddStoreTime(ctx, time.Millisecond)
			AddWeChatTime(ctx, 2*time.Millisecond)
		})
	}
	wg.Wait()
	for _, a := range []struct {
		api  string
		code int
	}{{"stable_token", 0}, {"stable_token", 45009}, {"stable_token", 0}, {"phone", 40001}, {"phone", 0}, {"jscode2session", -1}, {"jscode2session", 40029}, {"ok", 0}} {
		AddErrcode(ctx, a.api, a.code)
	}
	m := f.Measures()
	if m.Store != 10*time.Millisecond || m.StoreCalls != 10 || m.WeChat != 20*time.Millisecond || m.WeChatCalls != 10 {
		t.Errorf("got store %s in %d calls, WeChat %s in %d; want 10ms in 10, 20ms in 10", m.Store, m.StoreCalls, m.WeChat, m.WeChatCalls)
	}
	// The last non-zero errcode of each API, else 0.
	if got, want := fmt.Sprint(m.Errcodes), "map[jscode2session:40029 ok:0 phone:40001 stable_token:45009]"; got != want {
		t.Errorf("errcodes %s, want %s", got, want)
	}
	m.Errcodes["ok"] = 1
	if f.Measures().Errcodes["ok"] != 0 {
		t.Error("Measures shares its map with the request")
	}
	// Without Fields nothing happens.
	AddStoreTime(context.Background(), time.Second)
	AddErrcode(context.Background(), "x", 1)
}
