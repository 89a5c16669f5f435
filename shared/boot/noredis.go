//go:build wxsession_noredis

package boot

// routeRedisLog does nothing: this build leaves Redis out (-tags wxsession_noredis).
func routeRedisLog() {}
