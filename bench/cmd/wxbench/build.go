package main

import (
	"cmp"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// functions are wxsession's four functions, in report order.
var functions = []string{"login", "validate", "decrypt", "logout"}

// A variant is one way the functions are built.
type variant struct {
	name  string
	tags  string
	strip bool
}

// The build variants the report compares. lambdaRelease is what `make
// build-lambda` and `sam build` produce (for arm64 there; for this machine
// here), and what the cold-start and warm measurements run.
var (
	plain          = variant{name: "plain", tags: ""}
	allUnstrip     = variant{name: "all-unstripped", tags: "lambda.norpc"}
	allRelease     = variant{name: "all-release", tags: "lambda.norpc", strip: true}
	lambdaUnstrip  = variant{name: "lambda-unstripped", tags: lambdaTags}
	lambdaRelease  = variant{name: "lambda-release", tags: lambdaTags, strip: true}
	scfUnstrip     = variant{name: "scf-unstripped", tags: scfTags}
	scfRelease     = variant{name: "scf-release", tags: scfTags, strip: true}
	buildVariants  = []variant{plain, allUnstrip, allRelease, lambdaUnstrip, lambdaRelease, scfUnstrip, scfRelease}
	lambdaTags     = "lambda.norpc,wxsession_lambda,wxsession_dynamodb"
	scfTags        = "wxsession_scf,wxsession_redis"
	floorFunctions = []string{"bare", "getitem"}
)

// flags returns the go build flags of v, as the Makefile spells them.
func (v variant) flags() []string {
	var f []string
	if v.tags != "" {
		f = append(f, "-tags", v.tags)
	}
	if v != plain {
		f = append(f, "-trimpath")
	}
	if v.strip {
		f = append(f, "-ldflags=-s -w")
	}
	return f
}

// describe spells the build as a command line, for the report.
func (v variant) describe() string {
	if v == plain {
		return "`go build`"
	}
	s := "`CGO_ENABLED=0 go build"
	if v.tags != "" {
		s += " -tags " + v.tags
	}
	s += " -trimpath"
	if v.strip {
		s += " -ldflags='-s -w'"
	}
	return s + "`"
}

// builds holds the binaries built for the run.
type builds struct {
	dir string
}

func (b builds) path(v variant, name string) string { return filepath.Join(b.dir, v.name, name) }

// buildAll builds every function in every variant, the floor functions and
// the local server, for this machine.
func buildAll(ctx context.Context, root, dir string) (builds, error) {
	b := builds{dir: dir}
	for _, v := range buildVariants {
		pkgs := make([]string, 0, len(functions)+len(floorFunctions))
		for _, f := range functions {
			pkgs = append(pkgs, "./functions/"+f)
		}
		if v == lambdaRelease {
			for _, f := range floorFunctions {
				pkgs = append(pkgs, "./bench/floor/"+f)
			}
		}
		if err := goBuild(ctx, root, v, filepath.Join(dir, v.name)+string(os.PathSeparator), pkgs...); err != nil {
			return b, err
		}
	}
	return b, goBuild(ctx, root, plain, filepath.Join(dir, "local"), "./cmd/local")
}

func goBuild(ctx context.Context, root string, v variant, out string, pkgs ...string) error {
	args := append(append([]string{"build"}, v.flags()...), "-o", out)
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...) //nolint:gosec // the bench's own build commands
	cmd.Dir = root
	cmd.Env = os.Environ()
	if v != plain {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// share is one module's (or the standard library's) part of a binary.
type share struct {
	name  string
	bytes uint64
}

// sizeByModule adds up the sizes of the symbols of an unstripped binary by
// the module (or standard library package group) they belong to: what makes
// the binary big. Symbols in no module (runtime tables, func metadata) are
// "go: runtime tables".
func sizeByModule(path string) ([]share, uint64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = f.Close() }()
	syms, err := f.Symbols()
	if err != nil {
		return nil, 0, err
	}
	by := map[string]uint64{}
	var total uint64
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF || int(s.Section) >= len(f.Sections) || f.Sections[s.Section].Type == elf.SHT_NOBITS {
			continue // undefined, absolute, or zero-filled (takes no file space)
		}
		by[moduleOf(s.Name)] += s.Size
		total += s.Size
	}
	out := make([]share, 0, len(by))
	for k, v := range by {
		out = append(out, share{k, v})
	}
	slices.SortFunc(out, func(a, b share) int { return cmp.Compare(b.bytes, a.bytes) })
	return out, total, nil
}

// modules are the groups sizeByModule reports; the first prefix that matches
// a symbol's package path names its group.
var modules = []struct{ prefix, name string }{
	{"github.com/aws/aws-sdk-go-v2", "aws-sdk-go-v2 (DynamoDB client, signer)"},
	{"github.com/aws/smithy-go", "smithy-go (the SDK's runtime)"},
	{"github.com/aws/aws-lambda-go", "aws-lambda-go"},
	{"github.com/redis/go-redis", "go-redis"},
	{"github.com/tencentyun/scf-go-lib", "scf-go-lib"},
	{"github.com/wxsession/wxsession", "wxsession"},
	{"crypto/", "std: crypto (TLS, AES, SHA)"},
	{"vendor/golang.org/x/crypto", "std: crypto (TLS, AES, SHA)"},
	{"net/", "std: net, net/http"},
	{"net.", "std: net, net/http"},
	{"vendor/golang.org/x/net", "std: net, net/http"},
	{"encoding/gob", "std: net/rpc, encoding/gob, templates"},
	{"net/rpc", "std: net/rpc, encoding/gob, templates"},
	{"text/template", "std: net/rpc, encoding/gob, templates"},
	{"html/template", "std: net/rpc, encoding/gob, templates"},
	{"runtime", "std: runtime"},
	{"go:", "go: runtime tables"},
	{"type:", "go: type descriptors"},
}

func moduleOf(sym string) string {
	s := strings.TrimPrefix(sym, "go:itab.")
	s = strings.TrimLeft(s, "*")
	for _, m := range modules {
		if strings.HasPrefix(s, m.prefix) {
			return m.name
		}
	}
	if strings.HasPrefix(sym, "go:") || strings.HasPrefix(sym, "type:") {
		return "go: runtime tables"
	}
	return "std: other"
}
