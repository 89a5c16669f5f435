package redis

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Client tuning, applied where the URL does not set a value of its own (see
// goredis.ParseURL for the query parameters it reads). Redis answers in well
// under a millisecond, so anything slower is a fault to report
// (store_unavailable), not to wait out.
const (
	dialTimeout  = time.Second
	ioTimeout    = time.Second
	poolTimeout  = time.Second
	poolSize     = 8 // a function serves one request at a time
	maxRetries   = 1 // one retry: a connection a frozen Lambda kept may be dead
	dialAttempts = 1 // go-redis's default of 5 dials would outlast the call's budget
)

// ClientOption adjusts NewClient.
type ClientOption func(*goredis.Options) error

// WithCAFile makes a rediss:// client trust the CA certificates in the PEM
// file at path (REDIS_CA_FILE) instead of the system's pool: TencentDB for
// Redis signs its TLS certificates with its own CA, which you download from
// the instance's console.
func WithCAFile(path string) ClientOption {
	return func(o *goredis.Options) error {
		if o.TLSConfig == nil {
			return errors.New("a CA file is given, but the URL is not rediss://")
		}
		pem, err := os.ReadFile(path) //nolint:gosec // REDIS_CA_FILE, set by whoever deploys the function
		if err != nil {
			return fmt.Errorf("read the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("the CA file holds no PEM certificate")
		}
		o.TLSConfig.RootCAs = pool
		return nil
	}
}

// NewClient returns a client for rawURL (redis://[user:password@]host:port/db, or
// rediss:// for TLS) tuned to fail fast and to reconnect by itself when the
// server comes back. It dials lazily, so building it costs no round trip.
// Build it once per process; it is safe for concurrent use.
//
// It speaks RESP2: TencentDB for Redis 6.2 and 7.0 do not answer HELLO 3, and
// go-redis would otherwise start every connection with it. A TencentDB custom
// account authenticates with "account@password" as the password
// (redis://:account%40password@host:6379/0), which is what AUTH sends when the
// URL has no user name.
func NewClient(rawURL string, opts ...ClientOption) (*goredis.Client, error) {
	o, err := goredis.ParseURL(rawURL)
	if err != nil {
		// url.Parse's errors quote the URL, password and all: keep only the
		// reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis: bad URL: %w", err)
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
	}
	o.Protocol = 2
	setDefault(&o.DialTimeout, dialTimeout)
	setDefault(&o.ReadTimeout, ioTimeout)
	setDefault(&o.WriteTimeout, ioTimeout)
	setDefault(&o.PoolTimeout, poolTimeout)
	setDefault(&o.PoolSize, poolSize)
	setDefault(&o.MaxRetries, maxRetries)
	setDefault(&o.DialerRetries, dialAttempts)
	// Deadlines of the caller's context (the store's per-call budget) bound
	// reads and writes too, not just the time waiting for a connection.
	o.ContextTimeoutEnabled = true
	// Skip the handshake extras (CLIENT SETINFO, maintenance notifications):
	// round trips at cold start, and commands managed Redis services such as
	// TencentDB may refuse.
	o.DisableIdentity = true
	if o.MaintNotificationsConfig == nil {
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	}
	return goredis.NewClient(o), nil
}

func setDefault[T comparable](dst *T, v T) {
	var zero T
	if *dst == zero {
		*dst = v
	}
}
