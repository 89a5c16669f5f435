// Command logout is wxsession's logout function: it serves POST /logout on AWS
// Lambda, Tencent SCF or plain HTTP, whichever started it.
package main

import (
	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/platform"
)

func main() {
	cfg := config.MustLoad()
	platform.Serve(api.Logout(nil, api.WithApps(boot.MustServices(cfg))), cfg.Port)
}
