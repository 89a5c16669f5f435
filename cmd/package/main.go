// Command package writes the upload-ready zip of every function for each
// cloud's console, with a SHA256SUMS list, into one directory (make package):
//
//	<out>/wxsession-<function>-lambda.zip   bootstrap                 linux/arm64, AWS Lambda provided.al2023
//	<out>/wxsession-<function>-scf.zip      main, scf_bootstrap       linux/amd64, Tencent SCF (Web or event function)
//	<out>/SHA256SUMS                        sha256sum -c format
//
// Every file in a zip is mode 0755 (the runtimes execute bootstrap, main and
// scf_bootstrap) and has a fixed time, so the same sources give the same zips.
// It uses Go's archive/zip, so nothing beyond Go needs installing.
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// functions are the deployable functions, each a ./functions/<name> package.
var functions = []string{"login", "validate", "decrypt", "logout", "phonenumber", "token"}

// zipTime is every entry's modification time: a fixed one keeps the zips
// reproducible (zip cannot store times before 1980).
var zipTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	out := flag.String("out", "dist/package", "directory the zips and SHA256SUMS are written to")
	lambdaTags := flag.String("lambda-tags", "", "build tags of the AWS Lambda binaries (the Makefile's LAMBDA_TAGS)")
	scfTags := flag.String("scf-tags", "", "build tags of the Tencent SCF binaries (the Makefile's SCF_TAGS)")
	bootstrap := flag.String("scf-bootstrap", "scf_bootstrap", "the Web function start script to put next to main")
	flag.Parse()
	if err := run(*out, *lambdaTags, *scfTags, *bootstrap); err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
}

// target is one cloud's build: the platform and the zip's layout.
type target struct {
	cloud, goarch, tags, binary string
}

func run(out, lambdaTags, scfTags, bootstrapPath string) error {
	script, err := os.ReadFile(bootstrapPath) //nolint:gosec // the script the developer names
	if err != nil {
		return err
	}
	if bytes.Contains(script, []byte("\r")) || !bytes.HasPrefix(script, []byte("#!")) {
		return fmt.Errorf("%s must start with #! and use LF line ends", bootstrapPath)
	}
	if err := os.MkdirAll(out, 0o755); err != nil { //nolint:gosec // build output, world-readable on purpose
		return err
	}
	build, err := os.MkdirTemp("", "wxsession-package-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(build) }()

	targets := []target{
		{cloud: "lambda", goarch: "arm64", tags: lambdaTags, binary: "bootstrap"},
		{cloud: "scf", goarch: "amd64", tags: scfTags, binary: "main"},
	}
	sums := map[string]string{}
	for _, tg := range targets {
		for _, fn := range functions {
			bin := filepath.Join(build, tg.cloud, fn, tg.binary)
			if err := goBuild(bin, tg, fn); err != nil {
				return err
			}
			files := []zipFile{{name: tg.binary, path: bin}}
			if tg.cloud == "scf" {
				files = append(files, zipFile{name: "scf_bootstrap", data: script})
			}
			name := fmt.Sprintf("wxsession-%s-%s.zip", fn, tg.cloud)
			sum, err := writeZip(filepath.Join(out, name), files)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			sums[name] = sum
			fmt.Printf("%s  %s\n", sum, filepath.Join(out, name))
		}
	}
	return writeSums(filepath.Join(out, "SHA256SUMS"), sums)
}

// goBuild builds ./functions/<fn> as a static, stripped linux binary, as
// make build-lambda and make build-scf do.
func goBuild(dst string, tg target, fn string) error {
	args := []string{"build", "-trimpath", "-ldflags=-s -w"}
	if tg.tags != "" {
		args = append(args, "-tags", tg.tags)
	}
	args = append(args, "-o", dst, "./functions/"+fn)
	cmd := exec.CommandContext(context.Background(), goTool(), args...) //nolint:gosec // the go tool, on this repository's packages
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tg.goarch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s (linux/%s): %w", fn, tg.cloud, tg.goarch, err)
	}
	return nil
}

// goTool is the go command that runs this program, so `go run` with one
// toolchain does not build with another from PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p) //nolint:gosec // GOROOT's go binary
	return err == nil
}

// zipFile is one entry: its contents from path, or data.
type zipFile struct {
	name, path string
	data       []byte
}

// writeZip writes files, each executable (0755) at the zip's root, and
// returns the zip's SHA-256.
func writeZip(dst string, files []zipFile) (sum string, err error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		data := f.data
		if f.path != "" {
			if data, err = os.ReadFile(f.path); err != nil {
				return "", err
			}
		}
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: zipTime}
		// SetMode records Unix permissions in the external attributes (the
		// "made by Unix" header), which both clouds keep when they unpack.
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return "", err
		}
		if _, err := w.Write(data); err != nil {
			return "", err
		}
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil { //nolint:gosec // a package to upload, world-readable on purpose
		return "", err
	}
	h := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(h[:]), nil
}

// writeSums writes the list sha256sum -c reads: "<hex>  <file>" per line.
func writeSums(dst string, sums map[string]string) error {
	if len(sums) == 0 {
		return errors.New("no zip written")
	}
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(sums[n] + "  " + n + "\n")
	}
	f, err := os.Create(dst) //nolint:gosec // the output directory the developer names
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, b.String()); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
