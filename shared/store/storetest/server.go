package storetest

import (
	"os"
	"testing"
)

// LookupServer returns the address of the test server (DynamoDB Local or
// redis-server) the environment variable env names; make test starts them
// (scripts/test-services.sh). With CI set, a missing server fails the test:
// a CI run that silently leaves out its integration tests proves nothing.
func LookupServer(t testing.TB, env string) (string, bool) {
	t.Helper()
	u := os.Getenv(env)
	if u == "" && os.Getenv("CI") != "" {
		t.Fatalf("%s is not set, and CI is: this test needs its server (make test starts it: scripts/test-services.sh)", env)
	}
	return u, u != ""
}

// ServerURL is LookupServer for a test that needs the server: without one
// (and without CI) the test is skipped.
func ServerURL(t testing.TB, env string) string {
	t.Helper()
	u, ok := LookupServer(t, env)
	if !ok {
		t.Skip("set " + env + " to a test server (make test starts one: scripts/test-services.sh)")
	}
	return u
}
