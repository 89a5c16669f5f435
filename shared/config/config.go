// Package config reads wxsession's settings from the environment.
//
// Every variable is described in the README's configuration table. A bad value
// is reported as one error naming the variable, so start-up can stop with one
// clear line.
package config

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Store names accepted in SESSION_STORE.
const (
	StoreMemory   = "memory"
	StoreDynamoDB = "dynamodb"
	StoreRedis    = "redis"
)

// Config is wxsession's configuration.
type Config struct {
	// Apps are the mini-programs the deployment serves (WX_APPID, a
	// comma-separated list, with WX_SECRET), in the order listed. The first
	// is the app of session rows written before rows recorded their app.
	Apps []App
	// AppID and Secret are the first app's: what a single-app code path
	// uses.
	AppID  string // WX_APPID's first app
	Secret string // its WX_SECRET; never logged
	// APIBase is WeChat's API base URL, without a trailing slash (WX_API_BASE).
	APIBase string

	Store    string // SESSION_STORE: memory, dynamodb or redis
	Table    string // SESSION_TABLE, for dynamodb
	RedisURL string // REDIS_URL, for redis; never logged (it may hold a password)
	// RedisCAFile is a PEM file of the CAs that sign the Redis server's TLS
	// certificate (REDIS_CA_FILE), for rediss:// to a server whose CA is not
	// in the system's pool, such as TencentDB for Redis.
	RedisCAFile string

	TTL    time.Duration // SESSION_TTL: sliding session lifetime
	MaxAge time.Duration // SESSION_MAX_AGE: absolute cap from login

	// SealKeys, when set, seal session_keys at rest (SESSION_SEAL_KEY: one or
	// more 32-byte keys, comma-separated, newest first). The first seals,
	// every one opens, so a key is rotated without sending users to login.
	SealKeys [][]byte
	// SealKey is SealKeys[0], the key that seals; nil when none is set.
	SealKey []byte
	// MaxSessionsPerUser is the most live sessions one user may hold
	// (SESSION_MAX_PER_USER); the login past it ends the user's oldest.
	MaxSessionsPerUser int
	// WatermarkMaxAge, when positive, is the oldest watermark decrypt accepts.
	WatermarkMaxAge time.Duration

	Port int // PORT
}

// App is one mini-program a deployment serves.
type App struct {
	ID     string
	Secret string // never logged; empty in a function not given WX_SECRET
}

// Defaults.
const (
	DefaultAPIBase = "https://api.weixin.qq.com"
	DefaultTTL     = 24 * time.Hour
	DefaultMaxAge  = 720 * time.Hour
	DefaultPort    = 8080
	// DefaultMaxSessionsPerUser is SESSION_MAX_PER_USER's default.
	DefaultMaxSessionsPerUser = 10
)

// Error is a configuration error naming the offending variable.
type Error struct {
	Var    string
	Reason string
}

func (e *Error) Error() string { return e.Var + ": " + e.Reason }

// Load reads a function's configuration through lookup (os.LookupEnv in
// production). It requires SESSION_STORE: a function's memory store lives
// and dies with its process, and separate functions cannot see each other's
// sessions, so memory is used only when asked for by name. It does not insist
// on WeChat credentials: see RequireCredentials.
func Load(lookup func(string) (string, bool)) (Config, error) {
	return load(lookup, "")
}

// LoadLocal is Load for the local server, which serves every route in one
// process: SESSION_STORE defaults to memory.
func LoadLocal(lookup func(string) (string, bool)) (Config, error) {
	return load(lookup, StoreMemory)
}

func load(lookup func(string) (string, bool), defaultStore string) (Config, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	apps, err := parseApps(get("WX_APPID"), get("WX_SECRET"))
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		Apps:     apps,
		APIBase:  get("WX_API_BASE"),
		Store:    strings.ToLower(get("SESSION_STORE")),
		Table:    get("SESSION_TABLE"),
		RedisURL: get("REDIS_URL"),
		TTL:      DefaultTTL,
		MaxAge:   DefaultMaxAge,
		Port:     DefaultPort,

		MaxSessionsPerUser: DefaultMaxSessionsPerUser,
	}
	if len(apps) > 0 {
		cfg.AppID, cfg.Secret = apps[0].ID, apps[0].Secret
	}
	if cfg.APIBase == "" {
		cfg.APIBase = DefaultAPIBase
	}
	u, err := url.Parse(cfg.APIBase)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Config{}, &Error{"WX_API_BASE", fmt.Sprintf("%q is not an http(s) URL", cfg.APIBase)}
	}
	cfg.APIBase = strings.TrimRight(cfg.APIBase, "/")

	if cfg.Store == "" {
		cfg.Store = defaultStore
	}
	switch cfg.Store {
	case "":
		return Config{}, &Error{"SESSION_STORE", "required: dynamodb, redis or memory (a function's memory store is its own process's: separate functions behind it lose every session)"}
	case StoreMemory:
	case StoreDynamoDB:
		if cfg.Table == "" {
			return Config{}, &Error{"SESSION_TABLE", "required when SESSION_STORE=dynamodb"}
		}
	case StoreRedis:
		if cfg.RedisURL == "" {
			return Config{}, &Error{"REDIS_URL", "required when SESSION_STORE=redis"}
		}
		u, err := url.Parse(cfg.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return Config{}, &Error{"REDIS_URL", "must look like redis://host:port/db or rediss://host:port/db"}
		}
	default:
		return Config{}, &Error{"SESSION_STORE", fmt.Sprintf("%q is not one of memory, dynamodb, redis", cfg.Store)}
	}

	// REDIS_CA_FILE: checked here, once, so a function with a missing or
	// garbled CA stops at start-up instead of failing every request's TLS
	// handshake.
	if cfg.RedisCAFile = get("REDIS_CA_FILE"); cfg.RedisCAFile != "" {
		if cfg.Store != StoreRedis || !strings.HasPrefix(cfg.RedisURL, "rediss://") {
			return Config{}, &Error{"REDIS_CA_FILE", "is set, but only SESSION_STORE=redis with a rediss:// REDIS_URL uses it"}
		}
		pem, err := os.ReadFile(cfg.RedisCAFile)
		if err != nil {
			return Config{}, &Error{"REDIS_CA_FILE", fmt.Sprintf("cannot read it: %v", err)}
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return Config{}, &Error{"REDIS_CA_FILE", fmt.Sprintf("%q holds no PEM certificate", cfg.RedisCAFile)}
		}
	}

	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"SESSION_TTL", &cfg.TTL},
		{"SESSION_MAX_AGE", &cfg.MaxAge},
		{"WATERMARK_MAX_AGE", &cfg.WatermarkMaxAge},
	}
	for _, d := range durations {
		s := get(d.name)
		if s == "" {
			continue
		}
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			return Config{}, &Error{d.name, fmt.Sprintf("%q is not a positive Go duration such as 24h or 90m", s)}
		}
		*d.dst = v
	}
	if cfg.MaxAge < cfg.TTL {
		return Config{}, &Error{"SESSION_MAX_AGE", fmt.Sprintf("%s is shorter than SESSION_TTL (%s)", cfg.MaxAge, cfg.TTL)}
	}

	if s := get("SESSION_SEAL_KEY"); s != "" {
		for i, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			key, err := base64.StdEncoding.DecodeString(part)
			if err != nil {
				key, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
			}
			if err != nil || len(key) != 32 {
				return Config{}, &Error{"SESSION_SEAL_KEY", fmt.Sprintf("key %d must be the base64 of exactly 32 bytes (try: openssl rand -base64 32); several keys are comma-separated, newest first", i+1)}
			}
			cfg.SealKeys = append(cfg.SealKeys, key)
		}
		cfg.SealKey = cfg.SealKeys[0]
	}

	if s := get("SESSION_MAX_PER_USER"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return Config{}, &Error{"SESSION_MAX_PER_USER", fmt.Sprintf("%q is not a positive whole number", s)}
		}
		cfg.MaxSessionsPerUser = n
	}

	if s := get("PORT"); s != "" {
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 || p > 65535 {
			return Config{}, &Error{"PORT", fmt.Sprintf("%q is not a port number", s)}
		}
		cfg.Port = p
	}
	return cfg, nil
}

// parseApps reads WX_APPID (one appid, or several comma-separated) and
// WX_SECRET (one app's secret in plain form, or a JSON object of every app's
// secret by appid). Errors never quote a secret.
func parseApps(ids, secret string) ([]App, error) {
	if ids == "" {
		if secret != "" && strings.HasPrefix(secret, "{") {
			return nil, &Error{"WX_APPID", "required: the mini-programs' AppIDs, comma-separated"}
		}
		return nil, nil
	}
	var apps []App
	seen := map[string]bool{}
	for _, id := range strings.Split(ids, ",") {
		id = strings.TrimSpace(id)
		if !ValidAppID(id) {
			return nil, &Error{"WX_APPID", fmt.Sprintf("%q does not look like a mini-program AppID (wx and 16 hex characters); several are comma-separated", truncate(id, 40))}
		}
		if seen[id] {
			return nil, &Error{"WX_APPID", fmt.Sprintf("%s is listed twice", id)}
		}
		seen[id] = true
		apps = append(apps, App{ID: id})
	}
	switch {
	case secret == "":
	case strings.HasPrefix(secret, "{"):
		var m map[string]string
		if err := json.Unmarshal([]byte(secret), &m); err != nil {
			return nil, &Error{"WX_SECRET", "is not a JSON object of strings {\"<appid>\": \"<secret>\"} (its value is not shown)"}
		}
		for id := range m {
			if !seen[id] {
				return nil, &Error{"WX_SECRET", fmt.Sprintf("names %q, which WX_APPID does not list", truncate(id, 40))}
			}
		}
		for i := range apps {
			s := strings.TrimSpace(m[apps[i].ID])
			if s == "" {
				return nil, &Error{"WX_SECRET", fmt.Sprintf("has no secret for %s", apps[i].ID)}
			}
			apps[i].Secret = s
		}
	case len(apps) > 1:
		return nil, &Error{"WX_SECRET", "must be a JSON object {\"<appid>\": \"<secret>\", ...} when WX_APPID lists several apps"}
	default:
		apps[0].Secret = secret
	}
	return apps, nil
}

// ValidAppID reports whether id looks like a mini-program AppID: "wx" and
// 16 lower-case hex characters, as WeChat writes them.
func ValidAppID(id string) bool {
	if len(id) != 18 || !strings.HasPrefix(id, "wx") {
		return false
	}
	for _, c := range id[2:] {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// AppList returns the apps the configuration serves: Apps, or for a Config
// built by hand with only AppID (and Secret), that one app.
func (c Config) AppList() []App {
	if len(c.Apps) > 0 {
		return c.Apps
	}
	if c.AppID == "" {
		return nil
	}
	return []App{{ID: c.AppID, Secret: c.Secret}}
}

// App returns the configured app id names, if any.
func (c Config) App(id string) (App, bool) {
	for _, a := range c.AppList() {
		if a.ID == id {
			return a, true
		}
	}
	return App{}, false
}

// RequireCredentials reports a missing WX_APPID or WX_SECRET: what a process
// that calls WeChat with the secret needs (the login, phonenumber and token
// functions, the local server when it does not emulate WeChat).
func (c Config) RequireCredentials() error {
	if err := RequireAppID(c); err != nil {
		return err
	}
	return RequireSecret(c)
}

// Requirement is a setting a function cannot start without.
type Requirement func(Config) error

// RequireAppID requires WX_APPID, which every function needs: login sends it
// to WeChat, decrypt checks watermarks against it, and rows are keyed by it.
func RequireAppID(c Config) error {
	if c.AppID == "" {
		return &Error{"WX_APPID", "required: the mini-program's AppID"}
	}
	return nil
}

// RequireSecret requires WX_SECRET: what login (jscode2session), phonenumber
// and token (the access_token, through stable_token) need. No other function
// is given the AppSecret.
func RequireSecret(c Config) error {
	if c.Secret == "" {
		return &Error{"WX_SECRET", "required: the mini-program's AppSecret"}
	}
	for _, a := range c.Apps {
		if a.Secret == "" {
			return &Error{"WX_SECRET", "has no secret for " + a.ID}
		}
	}
	return nil
}

// MustLoad loads the configuration of a deployed function from the process
// environment, requiring WX_APPID and whatever else reqs name; on a bad or
// missing value it prints one line naming the variable and exits.
func MustLoad(reqs ...Requirement) Config {
	cfg, err := Load(os.LookupEnv)
	if err != nil {
		Exit(err)
	}
	for _, req := range append([]Requirement{RequireAppID}, reqs...) {
		if err := req(cfg); err != nil {
			Exit(err)
		}
	}
	return cfg
}

// Exit prints one line describing a start-up error and exits with status 2.
func Exit(err error) {
	fmt.Fprintf(os.Stderr, "wxsession: configuration: %v\n", err)
	os.Exit(2)
}
