//go:build !wxsession_noredis

package boot

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"
)

// routeRedisLog sends go-redis's own log lines (a failed dial, say) to slog,
// so they are JSON like every other line instead of bare text on stderr.
func routeRedisLog() { goredis.SetLogger(redisLogger{}) }

type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}
