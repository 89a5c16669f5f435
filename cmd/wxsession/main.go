// Command wxsession is the operator's command: it reads the same
// configuration (environment) as the functions and talks to the same session
// store.
//
//	wxsession [--appid APPID] [--json] sessions <openid>   a user's live sessions (created, expires)
//	wxsession [--appid APPID] [--json] revoke <openid>     end every session of a user
//	wxsession [--json] table create                        the DynamoDB table, TTL on (console deployments)
//	wxsession [--appid APPID] [--json] check               the configuration is valid and the store answers
//
// Exit status: 0 on success, 2 for a usage or configuration error, 1 when
// the store fails.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}
