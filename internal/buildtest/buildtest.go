// Package buildtest helps tests build the product as its release does: it
// reads the release build tags from the Makefile and finds the go command.
package buildtest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// ReleaseTags reads LAMBDA_TAGS and SCF_TAGS from the Makefile at makefile, so
// tests build what `make build-lambda`, `sam build`, `make build-scf` and
// `make package` ship.
func ReleaseTags(makefile string) (lambda, scf string, err error) {
	b, err := os.ReadFile(makefile) //nolint:gosec // the test names the repository's own Makefile
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "LAMBDA_TAGS ?= "); ok {
			lambda = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "SCF_TAGS ?= "); ok {
			scf = strings.TrimSpace(v)
		}
	}
	if lambda == "" || scf == "" {
		return "", "", errors.New("the Makefile sets no LAMBDA_TAGS or SCF_TAGS")
	}
	return lambda, scf, nil
}

// GoTool returns the go command of the toolchain running the tests
// ($GOROOT/bin/go), or "go" from PATH.
func GoTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil { //nolint:gosec // GOROOT, set by the go command running the tests
			return p
		}
	}
	return "go"
}
