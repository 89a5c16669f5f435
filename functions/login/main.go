// Command login is wxsession's login function: it serves POST /login on AWS
// Lambda, Tencent SCF or plain HTTP, whichever started it.
package main

import (
	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/platform"
)

func main() {
	cfg := config.MustLoad(config.RequireSecret) // only login calls WeChat
	platform.Serve(api.Login(nil, api.WithApps(boot.MustServices(cfg))), cfg.Port)
}
