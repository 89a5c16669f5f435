package functions_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// TestSCFFunctionURL sends the function-URL sample events (events/scf/) to the
// built binaries over SCF's net/rpc protocol, the four functions sharing
// redis-server as they share TencentDB for Redis: built with every runtime
// and store, and as the SCF release build. The older API Gateway events still
// parse.
func TestSCFFunctionURL(t *testing.T) {
	redisURL := storetest.ServerURL(t, "WXSESSION_REDIS_URL")
	t.Run("every store", func(t *testing.T) { testSCFFunctionURL(t, everyStore, redisURL) })
	t.Run("SCF release build", func(t *testing.T) { testSCFFunctionURL(t, scfRelease, redisURL) })
}

func testSCFFunctionURL(t *testing.T, b *build, redisURL string) {
	emu, wxBase := newEmulator(t)
	env := map[string]string{"WX_API_BASE": wxBase, "SESSION_STORE": "redis", "REDIS_URL": redisURL}
	fns := map[string]*scfFunction{}
	for _, name := range functionNames {
		fns[name] = startSCFIn(t, b, name, env)
	}
	openID := emu.OpenID(user)

	skey := map[string]string{"SKEY": fns["login"].invoke(t, readEvent(t, "scf/login.json", map[string]string{"CODE": emu.Code(user)})).loginSkey(t, openID)}
	for _, ev := range []string{"scf/validate.json", "scf/validate-query.json", "scf/apigw-validate.json"} {
		a := fns["validate"].invoke(t, readEvent(t, ev, skey))
		a.want(t, http.StatusOK, "")
		if !strings.Contains(a.body, `"openid":"`+openID+`"`) {
			t.Errorf("%s: got %s, want openid %s", ev, a.body, openID)
		}
		if a.header["X-Request-Id"] == "" {
			t.Errorf("%s: the answer carries no X-Request-Id", ev)
		}
	}

	enc, err := emu.Encrypt(openID, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := fns["decrypt"].invoke(t, readEvent(t, "scf/decrypt.json", map[string]string{"SKEY": skey["SKEY"], "ENCRYPTED_DATA": enc.EncryptedData, "IV": enc.IV}))
	a.want(t, http.StatusOK, "")
	if !strings.Contains(a.body, `"stepInfoList"`) {
		t.Errorf("decrypt: got %s, want the decrypted WeRun data", a.body)
	}

	// An older API Gateway login, its body base64-encoded.
	other := fns["login"].invoke(t, readEvent(t, "scf/apigw-login-base64.json", map[string]string{"CODE": emu.Code("bob")})).loginSkey(t, emu.OpenID("bob"))

	fns["logout"].invoke(t, readEvent(t, "scf/logout.json", skey)).want(t, http.StatusNoContent, "")
	fns["validate"].invoke(t, readEvent(t, "scf/validate.json", skey)).want(t, http.StatusUnauthorized, "session_expired")
	fns["validate"].invoke(t, readEvent(t, "scf/validate.json", map[string]string{"SKEY": other})).want(t, http.StatusOK, "")
	for _, f := range fns {
		f.proc.alive(t)
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
