package storetest

import (
	"os"
	"testing"
)

// ServerURL returns the address of a test server (DynamoDB Local or
// redis-server) that the environment variable env names; make test starts
// them (scripts/test-services.sh). Without it the test is skipped, except
// with CI set, where a test that cannot reach its server fails: a CI run that
// silently skips its integration tests proves nothing.
func ServerURL(t testing.TB, env string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		msg := "set " + env + " to a test server (make test starts one: scripts/test-services.sh)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so this test must not be skipped")
		}
		t.Skip(msg)
	}
	return u
}
