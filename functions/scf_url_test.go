package functions_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// TestSCFEventShapes sends the sample events testSCFFlow does not (a
// function-URL query, and the older API Gateway events, one with a base64
// body) to the built login and validate binaries over SCF's net/rpc protocol,
// sharing redis-server: built with every runtime and store, and as the SCF
// release build.
func TestSCFEventShapes(t *testing.T) {
	redisURL := storetest.ServerURL(t, "WXSESSION_REDIS_URL")
	for name, b := range map[string]*build{"every store": everyStore, "SCF release build": scfRelease} {
		t.Run(name, func(t *testing.T) {
			emu, wxBase := newEmulator(t)
			env := map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "redis", "REDIS_URL": redisURL}
			login, validate := startSCFIn(t, b, "login", env), startSCFIn(t, b, "validate", env)
			openID := emu.OpenID(user)
			skey := map[string]string{"SKEY": login.invoke(t, readEvent(t, "scf/apigw-login-base64.json", map[string]string{"CODE": emu.Code(user)})).loginSkey(t, openID)}
			for _, ev := range []string{"scf/validate-query.json", "scf/apigw-validate.json"} {
				a := validate.invoke(t, readEvent(t, ev, skey))
				a.want(t, http.StatusOK, "")
				if !strings.Contains(a.body, `"openid":"`+openID+`"`) || a.header["X-Request-Id"] == "" {
					t.Errorf("%s: got %s %v, want openid %s and an X-Request-Id", ev, a.body, a.header, openID)
				}
			}
			login.proc.alive(t)
			validate.proc.alive(t)
		})
	}
}

// TestSCFFunctionURLPaths sends function-URL events at the paths a custom
// domain's mapping can hand a function: its route, "/" (the function URL
// itself, or a mapping that strips the route), and a prefix before the route.
// Each function answers its own route at all three.
func TestSCFFunctionURLPaths(t *testing.T) {
	emu, wxBase := newEmulator(t)
	mem := map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "memory"}
	events := map[string]string{"login": "scf/login.json", "validate": "scf/validate.json", "decrypt": "scf/decrypt.json", "logout": "scf/logout.json"}
	for _, name := range functionNames {
		t.Run(name, func(t *testing.T) {
			f := startSCF(t, name, mem)
			for _, path := range []string{"/" + name, "/", "/wxsession/" + name} {
				ev := strings.Replace(string(readEvent(t, events[name], map[string]string{"CODE": emu.Code(user), "SKEY": session.NewSkey()})),
					`"path":"/`+name+`"`, `"path":"`+path+`"`, 1)
				if !strings.Contains(ev, `"path":"`+path+`"`) {
					t.Fatalf("events/%s has no path /%s", events[name], name)
				}
				a := f.invoke(t, []byte(ev))
				switch name {
				case "login":
					a.want(t, http.StatusOK, "")
				case "validate":
					a.want(t, http.StatusUnauthorized, "session_expired")
				case "decrypt":
					a.want(t, http.StatusBadRequest, "invalid_request") // the placeholders are not base64
				case "logout":
					a.want(t, http.StatusNoContent, "")
				}
			}
		})
	}
}
