// Command validate is wxsession's validate function: it serves GET /validate
// (and, on AWS, HTTP API and REST API Lambda authorizer events) on AWS
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
	platform.Serve(api.Validate(nil, api.WithApps(boot.MustServices(cfg))), cfg.Port)
}
