// Command token is wxsession's token function: it serves POST /token, the
// app's shared access_token, to the operator's own functions. It is never
// routed on a public API: on AWS it is invoked directly (lambda:InvokeFunction
// with a POST /token HTTP API event), on Tencent through SCF's Invoke API; in
// plain-HTTP mode it listens like any function, so keep that port private.
package main

import (
	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/platform"
)

func main() {
	cfg := config.MustLoad(config.RequireSecret) // the access_token is fetched with the secret
	platform.Serve(api.Token(nil, api.WithApps(boot.MustServices(cfg))), cfg.Port)
}
