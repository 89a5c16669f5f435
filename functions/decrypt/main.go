// Command decrypt is wxsession's decrypt function: it serves POST /decrypt on
// AWS Lambda, Tencent SCF or plain HTTP, whichever started it.
package main

import (
	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/platform"
)

func main() {
	cfg := config.MustLoad()
	platform.Serve(api.Decrypt(nil, api.WithApps(boot.MustServices(cfg))), cfg.Port)
}
