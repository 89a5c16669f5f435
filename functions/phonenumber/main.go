// Command phonenumber is wxsession's phonenumber function: it serves POST
// /phonenumber (the user's phone number for a getPhoneNumber code) on AWS
// Lambda, Tencent SCF or plain HTTP, whichever started it.
package main

import (
	"github.com/wxsession/wxsession/shared/api"
	"github.com/wxsession/wxsession/shared/boot"
	"github.com/wxsession/wxsession/shared/config"
	"github.com/wxsession/wxsession/shared/platform"
)

func main() {
	cfg := config.MustLoad(config.RequireSecret) // the access_token is fetched with the secret
	platform.Serve(api.PhoneNumber(nil, api.WithApps(boot.MustServices(cfg))), cfg.Port)
}
