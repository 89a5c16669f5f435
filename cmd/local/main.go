// Command local runs every wxsession route on one port, like
// `sam local start-api` without Docker: the session store of your choice
// (memory by default) and, when WX_SECRET is empty, a built-in WeChat emulator
// mounted at /emulator, so every route can be tried with curl.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/platform"
	"github.com/wxsession/wxsession/shared/store"
)

// demoAppID is the AppID the emulator plays when WX_APPID is unset.
const demoAppID = "wx0123456789abcdef"

func main() {
	cfg, err := config.LoadLocal(os.LookupEnv)
	if err != nil {
		config.Exit(err)
	}
	host := os.Getenv("HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(loopbackFor(host), strconv.Itoa(cfg.Port))
	log := boot.Logger()
	emulate := cfg.Secret == ""
	h, cfg, err := newServer(context.Background(), cfg, base, log)
	if err != nil {
		config.Exit(err)
	}
	printWelcome(os.Stdout, base, cfg, emulate)
	if err := platform.ListenAndServe(context.Background(), net.JoinHostPort(host, strconv.Itoa(cfg.Port)), h); err != nil {
		slog.Error("local server stopped", "err", err)
		os.Exit(1)
	}
}

// emulatorSecret is the AppSecret the emulator plays with; it guards nothing.
const emulatorSecret = "wxsession-local-emulator"

// newServer returns the local server's handler for a server reachable at
// base, and the configuration it runs with: when cfg has no WX_SECRET, a WeChat
// emulator is mounted at /emulator and WeChat calls go to it.
func newServer(ctx context.Context, cfg config.Config, base string, log *slog.Logger) (http.Handler, config.Config, error) {
	var emu http.Handler
	if cfg.Secret == "" {
		if cfg.AppID == "" {
			cfg.AppID = demoAppID
		}
		cfg.Secret = emulatorSecret
		cfg.APIBase = base + "/emulator"
		// The emulator plays every app listed, each with the emulator's
		// secret.
		var more []emulator.Option
		for i := range cfg.Apps {
			cfg.Apps[i].Secret = emulatorSecret
			if i > 0 {
				more = append(more, emulator.WithApp(cfg.Apps[i].ID, emulatorSecret))
			}
		}
		emu = http.StripPrefix("/emulator", emulator.New(cfg.AppID, cfg.Secret, more...))
	} else if err := cfg.RequireCredentials(); err != nil {
		return nil, cfg, err
	}
	// Unlike a deployed function, the local server creates its DynamoDB
	// table (TTL on) when it is missing.
	svcs, err := boot.Services(ctx, cfg, log, store.CreateMissingTable())
	if err != nil {
		return nil, cfg, err
	}
	product := api.All(nil, api.WithApps(svcs), api.WithLogger(log))
	return withOpenAPI(localHandler(loopbackToken(product, api.Token(nil, api.WithApps(svcs), api.WithLogger(log))), emu)), cfg, nil
}

// loopbackToken serves POST /token (the app's access_token, which no public
// route hands out) to callers on this machine only: a request to /token from
// any other address, as reaches a server started with HOST=0.0.0.0, is
// answered by product like any unknown path (404 not_found).
func loopbackToken(product, tok http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" && fromLoopback(r) {
			tok.ServeHTTP(w, r)
			return
		}
		product.ServeHTTP(w, r)
	})
}

// fromLoopback reports whether a request came from this machine.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// localHandler sends /emulator/… to the emulator (when there is one) and
// every other request to the product's handler, untouched. An http.ServeMux
// would redirect paths such as //login or /login/../login to /login, which no
// deployed runtime does (they answer 404 not_found), and a client following
// the redirect would turn a POST into a GET.
func localHandler(product, emu http.Handler) http.Handler {
	if emu == nil {
		return product
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/emulator/") {
			emu.ServeHTTP(w, r)
			return
		}
		product.ServeHTTP(w, r)
	})
}

// loopbackFor returns the host to reach a server listening on host from this
// machine.
func loopbackFor(host string) string {
	if host == "0.0.0.0" || host == "::" || host == "" {
		return "127.0.0.1"
	}
	return host
}

func printWelcome(w io.Writer, base string, cfg config.Config, emulate bool) {
	wx := "WeChat at " + cfg.APIBase
	if emulate {
		wx = "built-in WeChat emulator (WX_SECRET is empty)"
	}
	_, _ = fmt.Fprintf(w, "wxsession local server on %s\n  appid %s · store %s · %s\n\n", base, cfg.AppID, cfg.Store, wx)
	if !emulate {
		_, _ = fmt.Fprintf(w, "Routes: POST %[1]s/login, GET %[1]s/validate, POST %[1]s/decrypt, POST %[1]s/phonenumber, POST %[1]s/logout\n"+
			"Loopback only: POST %[1]s/token (the app's access_token)\n\n", base)
		return
	}
	_, _ = fmt.Fprintf(w, `Try every route (needs curl and jq):

  # 1. wx.login on a phone: the emulator hands out a login code for user "alice"
  CODE=$(curl -s -X POST '%[1]s/emulator/wx.login?user=alice' | jq -r .code)

  # 2. your mini-program sends it to /login and keeps the skey
  curl -s -X POST %[1]s/login -H 'Content-Type: application/json' -d "{\"code\":\"$CODE\"}" | tee /tmp/wxsession-login.json
  SKEY=$(jq -r .skey /tmp/wxsession-login.json); OPENID=$(jq -r .openid /tmp/wxsession-login.json)

  # 3. every later request carries the skey
  curl -s %[1]s/validate -H "Authorization: Bearer $SKEY"

  # 4. wx.getWeRunData on a phone: the emulator encrypts data with alice's session_key
  curl -s -X POST %[1]s/emulator/encrypt -d "{\"openid\":\"$OPENID\"}" > /tmp/wxsession-werun.json
  curl -s -X POST %[1]s/decrypt -H "Authorization: Bearer $SKEY" -H 'Content-Type: application/json' -d @/tmp/wxsession-werun.json

  # 5. the getPhoneNumber button: the emulator hands out a phone code for alice,
  #    your mini-program sends it to /phonenumber with the skey
  PCODE=$(curl -s -X POST '%[1]s/emulator/getPhoneNumber?user=alice' | jq -r .code)
  curl -s -X POST %[1]s/phonenumber -H "Authorization: Bearer $SKEY" -H 'Content-Type: application/json' -d "{\"code\":\"$PCODE\"}"

  # 6. your own functions get the app's access_token here (this machine only)
  curl -s -X POST %[1]s/token -H 'Content-Type: application/json' -d '{}'

  # 7. log out; the skey stops working
  curl -s -i -X POST %[1]s/logout -H "Authorization: Bearer $SKEY"
  curl -s %[1]s/validate -H "Authorization: Bearer $SKEY"

`, base)
}
