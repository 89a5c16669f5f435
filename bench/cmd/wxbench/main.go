// Command wxbench measures wxsession on this machine: `make bench` runs it
// from the repository root, with DynamoDB Local and redis-server started by
// scripts/bench.sh (WXSESSION_DYNAMODB_URL, WXSESSION_REDIS_URL). It builds
// the functions as the release builds do, for this machine; times them on a
// Lambda Runtime API (shared/platform/lambdatest) beside two floor functions
// (bench/floor); reports binary sizes; reports the store operations per
// request that TestStoreOperationBudgets (shared/store) counts and asserts;
// loads the local server with vegeta; and runs the Go benchmarks (raw output
// to docs/benchmarks.txt, summarised by benchstat). It prints the report and
// writes it between the bench markers of docs/performance.md.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/template"
	"time"
)

// functions are wxsession's four functions, in report order.
var functions = []string{"login", "validate", "decrypt", "logout"}

// A variant is one way the functions are built: a release build is
// CGO_ENABLED=0 go build -trimpath, stripped or not; the zero variant is a
// plain go build. The functions are timed as lambdaRelease, what `make
// build-lambda` and `sam build` ship (for arm64 there, this machine here).
type variant struct {
	Tags           string
	Release, Strip bool
}

var (
	lambdaTags    = "lambda.norpc,wxsession_lambda,wxsession_dynamodb"
	scfTags       = "wxsession_scf,wxsession_redis"
	lambdaRelease = variant{lambdaTags, true, true}
	allRelease    = variant{"lambda.norpc", true, true}
	// sizeColumns are the builds of the size table, unstripped · stripped.
	sizeColumns = [][2]variant{{{lambdaTags, true, false}, lambdaRelease}, {{scfTags, true, false}, {scfTags, true, true}},
		{{"lambda.norpc", true, false}, allRelease}, {}}
)

// The Go benchmarks the report runs, and the benchstat that summarises them.
var (
	goBench   = []string{"-run", "^$", "-bench", "^(BenchmarkOpen|BenchmarkNewSkey|BenchmarkID|BenchmarkValidate|BenchmarkInvoke)$", "-benchmem"}
	goBenchIn = []string{"./shared/wxcrypto", "./shared/session", "./shared/api", "./shared/platform/awslambda"}
	benchstat = "golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"
)

//go:embed report.md.tmpl
var reportTemplate string

// report is what the template renders; its tables are rows of cells.
type report struct {
	Date, Go, LoadAvg, Took          string
	CPUs, Spawns, Invocations, Conns int
	LoadProcs                        int
	Warmup, Duration                 time.Duration
	Functions, Sizes, Ops            [][]string
	OpsStores                        []string
	Load                             []loadResult
	GoBench, GoBenchCmd              string
}

func main() {
	r := report{}
	flag.IntVar(&r.Spawns, "spawns", 21, "cold starts per function; the report gives the median")
	flag.IntVar(&r.Invocations, "invocations", 300, "warm invocations per function")
	flag.IntVar(&r.Conns, "conns", 16, "load generator connections")
	flag.IntVar(&r.LoadProcs, "loadprocs", 1, "load generator GOMAXPROCS (as wrk's -t)")
	flag.DurationVar(&r.Warmup, "warmup", 2*time.Second, "load warm-up, not counted")
	flag.DurationVar(&r.Duration, "duration", 10*time.Second, "load measured duration, per store")
	benchArgs := flag.String("benchargs", "-count 6 -benchtime 300ms", "more go test -bench arguments")
	out := flag.String("out", "docs/performance.md", "the page to write the report into, between its bench markers; empty for none")
	flag.Parse()
	if err := run(context.Background(), &r, strings.Fields(*benchArgs), *out); err != nil {
		fmt.Fprintln(os.Stderr, "wxbench:", err)
		os.Exit(1)
	}
}

func progress(format string, args ...any) { fmt.Fprintf(os.Stderr, "wxbench: "+format+"\n", args...) }

func run(ctx context.Context, r *report, benchArgs []string, out string) error {
	dynamoURL, redisURL := os.Getenv("WXSESSION_DYNAMODB_URL"), os.Getenv("WXSESSION_REDIS_URL")
	if dynamoURL == "" || redisURL == "" {
		return errors.New("WXSESSION_DYNAMODB_URL and WXSESSION_REDIS_URL are not set: run `make bench`, which starts DynamoDB Local and redis-server")
	}
	started, load0 := time.Now(), loadAverage()
	r.Date, r.Go, r.CPUs = started.UTC().Format("2006-01-02 15:04 UTC"), runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU()
	dir, err := os.MkdirTemp("", "wxbench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	progress("building the functions")
	bin := func(v variant, name string) string {
		return filepath.Join(dir, fmt.Sprintf("%s-%t-%t", v.Tags, v.Release, v.Strip), name)
	}
	var pkgs []string
	for _, f := range functions {
		pkgs = append(pkgs, "./functions/"+f)
	}
	for _, col := range sizeColumns {
		for _, v := range slices.Compact(col[:]) {
			if err := goBuild(ctx, v, bin(v, "")+"/", pkgs...); err != nil {
				return err
			}
		}
	}
	if err := errors.Join(goBuild(ctx, lambdaRelease, bin(lambdaRelease, "")+"/", "./bench/floor/bare", "./bench/floor/getitem"),
		goBuild(ctx, variant{}, filepath.Join(dir, "local"), "./cmd/local")); err != nil {
		return err
	}
	for _, f := range functions {
		row := []string{f}
		for _, col := range sizeColumns {
			if row = append(row, mib(fileSize(bin(col[0], f)))); col[1] != col[0] {
				row[len(row)-1] += " · " + mib(fileSize(bin(col[1], f)))
			}
		}
		r.Sizes = append(r.Sizes, row)
	}

	fx, err := newFixtures(ctx, dynamoURL, bin(lambdaRelease, "login"))
	defer fx.close()
	if err != nil {
		return err
	}
	jobs, err := fx.jobs(bin)
	if err != nil {
		return err
	}
	if err := measureFunctions(jobs, fx.env, r.Spawns, r.Invocations); err != nil {
		return err
	}
	for _, j := range jobs {
		r.Functions = append(r.Functions, []string{j.label, ms(pct(j.cold, 50)), ms(slices.Min(j.cold)), ms(pct(j.cpu, 50)), ms(pct(j.init, 50)),
			ms(pct(j.warm, 50)) + " · " + ms(pct(j.warm, 99)), ms(pct(j.dur, 50)) + " · " + ms(pct(j.dur, 99)), ms(pct(j.handler, 50)), mib(j.rss * 1024)})
	}

	progress("store operations per request: go test -run TestStoreOperationBudgets ./shared/store")
	if r.Ops, r.OpsStores, err = storeOps(ctx); err != nil {
		return err
	}

	for _, s := range [][]string{{"memory", "SESSION_STORE=memory"}, {"redis", "SESSION_STORE=redis", "REDIS_URL=" + redisURL}} {
		progress("load: GET /validate on the local server, %s store, %d connections, %s", s[0], r.Conns, r.Duration)
		res, err := measureLoad(ctx, filepath.Join(dir, "local"), filepath.Join(dir, "local-"+s[0]+".log"), s[0], s[1:], r.Conns, r.LoadProcs, r.Warmup, r.Duration)
		if err != nil {
			return err
		}
		r.Load = append(r.Load, res)
	}

	args := slices.Concat([]string{"test"}, goBench, benchArgs, goBenchIn)
	r.GoBenchCmd = "go " + strings.Join(args, " ")
	progress("%s", r.GoBenchCmd)
	raw, err := goCmd(ctx, nil, args...)
	if err == nil {
		err = os.WriteFile("docs/benchmarks.txt", raw, 0o644) //nolint:gosec // a report, world-readable on purpose
	}
	if err != nil {
		return err
	}
	summary, err := goCmd(ctx, nil, "run", benchstat, "-table", "", "-filter", ".unit:(sec/op OR B/op OR allocs/op)", "docs/benchmarks.txt")
	if err != nil {
		return err
	}
	r.GoBench = strings.TrimSpace(string(summary))

	r.LoadAvg, r.Took = load0+" at the start, "+loadAverage()+" at the end", time.Since(started).Round(time.Second).String()
	var text bytes.Buffer
	tmpl := template.Must(template.New("report").Funcs(template.FuncMap{"ms": ms, "us": us}).Parse(reportTemplate))
	if err := tmpl.Execute(&text, r); err != nil {
		return err
	}
	fmt.Print(text.String())
	if out == "" {
		return nil
	}
	page, err := os.ReadFile(out) //nolint:gosec // the page named by a flag
	if err != nil {
		return err
	}
	before, rest, ok1 := strings.Cut(string(page), "<!-- bench:begin")
	comment, _, ok2 := strings.Cut(rest, "\n")
	_, after, ok3 := strings.Cut(rest, "<!-- bench:end -->")
	if !ok1 || !ok2 || !ok3 {
		return fmt.Errorf("%s has no <!-- bench:begin … --> and <!-- bench:end --> lines", out)
	}
	page = []byte(before + "<!-- bench:begin" + comment + "\n" + text.String() + "\n<!-- bench:end -->" + after)
	return os.WriteFile(out, page, 0o644) //nolint:gosec // a report, world-readable on purpose
}

// storeOps runs the store budget test and reads the "budget" lines it logs
// (store, request, WeChat calls, operations) into rows: request, WeChat
// calls, then the operations on each store.
func storeOps(ctx context.Context) (rows [][]string, stores []string, err error) {
	out, err := goCmd(ctx, nil, "test", "-count=1", "-v", "-run", "^TestStoreOperationBudgets$", "./shared/store")
	if err != nil {
		return nil, nil, err
	}
	for _, line := range strings.Split(string(out), "\n") {
		_, rest, ok := strings.Cut(line, "budget\t")
		if f := strings.Split(rest, "\t"); ok && len(f) == 4 {
			if !slices.Contains(stores, f[0]) {
				stores = append(stores, f[0])
			}
			i := slices.IndexFunc(rows, func(row []string) bool { return row[0] == f[1] })
			if i < 0 {
				i, rows = len(rows), append(rows, []string{f[1], f[2]})
			}
			rows[i] = append(rows[i], f[3])
		}
	}
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("TestStoreOperationBudgets logged no budget lines:\n%s", out)
	}
	return rows, stores, nil
}

func goBuild(ctx context.Context, v variant, out string, pkgs ...string) error {
	args, env := []string{"build", "-o", out, "-tags", v.Tags}, []string{}
	if v.Release {
		args, env = append(args, "-trimpath"), append(env, "CGO_ENABLED=0")
	}
	if v.Strip {
		args = append(args, "-ldflags=-s -w")
	}
	_, err := goCmd(ctx, env, append(args, pkgs...)...)
	return err
}

// goCmd runs the go command with env added to the environment, and returns
// its standard output.
func goCmd(ctx context.Context, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...) //nolint:gosec // the bench's own go commands
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out, nil
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// pct returns the p-th percentile of ds by the nearest-rank method.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	return s[min(max(int(p/100*float64(len(s))+0.999999)-1, 0), len(s)-1)]
}

// ms formats d in milliseconds, to a precision that suits its size.
func ms(d time.Duration) string {
	switch v := d.Seconds() * 1000; {
	case d == 0:
		return "–"
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", d.Seconds()*1e6) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
