// Command wxbench measures wxsession on this machine and writes the report
// to docs/performance.md; `make bench` runs it (scripts/bench.sh starts
// DynamoDB Local and redis-server for it, as `make test` does).
//
// It builds every function as the release builds do, for this machine, and
// measures:
//
//   - per function, driven through a Lambda Runtime API (lambdatest) as Lambda
//     drives it: cold start (process spawn → first answer, median of several
//     spawns), warm latency over a few hundred invocations, peak RSS, and
//     binary sizes for every build;
//   - the store operations and WeChat calls per request, counted on the
//     DynamoDB and Redis clients (bench/storeops);
//   - the local server's throughput for GET /validate with the memory and
//     Redis stores, under a closed-loop load generator;
//   - the Go benchmarks (go test -bench), whose raw output it writes to
//     docs/benchmarks.txt for benchstat.
//
// It reads WXSESSION_DYNAMODB_URL (required) and WXSESSION_REDIS_URL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wxsession/wxsession/bench/storeops"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/storetest"
)

// options are the command's flags.
type options struct {
	out, rawBench       string
	spawns, invocations int
	conns, loadProcs    int
	compare             string
	warmup, duration    time.Duration
	benchCount          int
	benchTime           string
	skip                map[string]bool
	dynamoURL, redisURL string
	root                string
	progress            func(format string, args ...any)
	started             time.Time
	startCPU            cpuSnapshot
	startLoad           string
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "docs/performance.md", "the report to write (its generated part, between the bench markers)")
	flag.StringVar(&o.rawBench, "benchout", "docs/benchmarks.txt", "where to write the raw go test -bench output (benchstat input)")
	flag.IntVar(&o.spawns, "spawns", 21, "cold starts per function; the report gives the median")
	flag.IntVar(&o.invocations, "invocations", 300, "warm invocations per function")
	flag.IntVar(&o.conns, "conns", 16, "load generator connections")
	flag.IntVar(&o.loadProcs, "loadprocs", 1, "load generator GOMAXPROCS (as wrk's -t)")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load generator warm-up, not counted")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "load generator measured duration, per store")
	flag.IntVar(&o.benchCount, "benchcount", 6, "go test -bench -count")
	flag.StringVar(&o.benchTime, "benchtime", "300ms", "go test -bench -benchtime")
	flag.StringVar(&o.compare, "compare", "", "also measure another build of validate, as label=path (e.g. before=/tmp/old/validate)")
	skip := flag.String("skip", "", "comma-separated parts to leave out: lambda, storeops, load, gobench")
	flag.Parse()
	o.skip = map[string]bool{}
	for _, s := range strings.Split(*skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.skip[s] = true
		}
	}
	o.dynamoURL, o.redisURL = os.Getenv("WXSESSION_DYNAMODB_URL"), os.Getenv("WXSESSION_REDIS_URL")
	o.progress = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "wxbench: "+format+"\n", args...)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "wxbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.dynamoURL == "" {
		return errors.New("WXSESSION_DYNAMODB_URL is not set: run it through `make bench`, which starts DynamoDB Local (scripts/test-services.sh)")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	o.root = root
	o.started, o.startCPU, o.startLoad = time.Now(), takeCPUSnapshot(), loadAverage()
	rep := &report{machine: describeMachine(ctx), opts: o}

	dir, err := os.MkdirTemp("", "wxbench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()

	o.progress("building the functions (%d builds)", len(buildVariants))
	b, err := buildAll(ctx, root, dir)
	if err != nil {
		return err
	}
	rep.builds = b
	if rep.breakdown, rep.breakdownTotal, err = sizeByModule(b.path(lambdaUnstrip, "validate")); err != nil {
		return fmt.Errorf("size breakdown: %w", err)
	}
	if rep.breakdownAll, rep.breakdownAllTotal, err = sizeByModule(b.path(allUnstrip, "validate")); err != nil {
		return fmt.Errorf("size breakdown: %w", err)
	}

	o.progress("package initialisation (GODEBUG=inittrace=1)")
	inits := traceInits(ctx, 21, b.path(lambdaRelease, "validate"), b.path(allRelease, "validate"))
	rep.initLambda, rep.initAll = inits[0], inits[1]
	if !o.skip["lambda"] {
		if err := measureFunctions(ctx, o, b, rep); err != nil {
			return err
		}
	}
	if !o.skip["storeops"] {
		o.progress("counting store operations per request")
		if err := countStoreOps(ctx, o, rep); err != nil {
			return err
		}
	}
	if !o.skip["load"] {
		stores := []struct {
			name string
			env  []string
		}{{"memory", []string{"SESSION_STORE=memory"}}}
		if o.redisURL != "" {
			stores = append(stores, struct {
				name string
				env  []string
			}{"redis", []string{"SESSION_STORE=redis", "REDIS_URL=" + o.redisURL}})
		}
		for _, s := range stores {
			o.progress("load: GET /validate on the local server, %s store, %d connections, %s", s.name, o.conns, o.duration)
			r, err := measureLoad(ctx, filepath.Join(dir, "local"), dir, s.name, s.env, o.conns, o.loadProcs, o.warmup, o.duration)
			if err != nil {
				return err
			}
			rep.load = append(rep.load, r)
		}
	}
	if !o.skip["gobench"] {
		o.progress("go test -bench (count %d, benchtime %s)", o.benchCount, o.benchTime)
		raw, res, err := runGoBenchmarks(ctx, root, o.benchCount, o.benchTime)
		if err != nil {
			return err
		}
		rep.goBench = res
		if o.rawBench != "" {
			if err := os.WriteFile(inRoot(root, o.rawBench), raw, 0o644); err != nil { //nolint:gosec // a report, world-readable on purpose
				return err
			}
		}
	}

	rep.busy, rep.topCPU = load(o.startCPU, takeCPUSnapshot())
	rep.endLoad, rep.elapsed = loadAverage(), time.Since(o.started)
	rep.selfCPU = selfCPU()
	text := rep.markdown()
	fmt.Print(text)
	if o.out == "" {
		return nil
	}
	return writeReport(inRoot(root, o.out), text)
}

// inRoot resolves a path given relative to the repository.
func inRoot(root, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(root, path)
}

// measureFunctions runs the cold-start and warm measurements of every
// function, the all-stores validate build and the floor functions, and the
// bare GetItem round trip they are compared with.
func measureFunctions(ctx context.Context, o options, b builds, rep *report) error {
	fx, err := newFixtures(ctx, o.root, o.dynamoURL)
	if err != nil {
		return err
	}
	defer fx.close()
	var jobs []lambdaJob
	for _, f := range functions {
		jobs = append(jobs, lambdaJob{label: f, fn: f, bin: b.path(lambdaRelease, f)})
	}
	jobs = append(jobs,
		lambdaJob{label: allStoresValidate, fn: "validate", bin: b.path(allRelease, "validate")},
		lambdaJob{label: floorBare, fn: "bare", bin: b.path(lambdaRelease, "bare")},
		lambdaJob{label: floorGetItem, fn: "getitem", bin: b.path(lambdaRelease, "getitem")},
	)
	if label, path, ok := strings.Cut(o.compare, "="); ok {
		jobs = append(jobs, lambdaJob{label: "validate, " + label, fn: "validate", bin: path})
	}
	o.progress("cold starts: %d spawns of each of %d binaries, then %d warm invocations each", o.spawns, len(jobs), o.invocations)
	st, err := measureLambda(ctx, fx, jobs, o.spawns, o.invocations, func(s string) { o.progress("%s", s) })
	if err != nil {
		return err
	}
	rep.jobs, rep.lambda = jobs, st
	o.progress("bare GetItem round trips")
	if rep.getItem, err = fx.getItemRoundTrips(ctx, o.invocations, 0); err != nil {
		return err
	}
	rep.getItemIdle, err = fx.getItemRoundTrips(ctx, o.invocations, time.Millisecond)
	return err
}

// The rows besides the four functions.
const (
	allStoresValidate = "validate, all stores"
	floorBare         = "floor: bare aws-lambda-go"
	floorGetItem      = "floor: one GetItem"
)

// countStoreOps counts each request's store operations on DynamoDB Local and
// (when set) redis-server.
func countStoreOps(ctx context.Context, o options, rep *report) error {
	type target struct {
		name string
		open func(c *storeops.Counter, clock *storetest.Clock) (session.Store, error)
	}
	targets := []target{{"DynamoDB", func(c *storeops.Counter, clock *storetest.Clock) (session.Store, error) {
		return storeops.DynamoDB(ctx, o.dynamoURL, c, clock.Now)
	}}}
	if o.redisURL != "" {
		targets = append(targets, target{"Redis", func(c *storeops.Counter, clock *storetest.Clock) (session.Store, error) {
			return storeops.Redis(o.redisURL, c, clock.Now)
		}})
	}
	for _, t := range targets {
		clock, c := storetest.NewClock(), storeops.NewCounter()
		st, err := t.open(c, clock)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		rows, err := storeops.Measure(ctx, st, c, clock)
		if err != nil {
			return fmt.Errorf("store operations on %s: %w", t.name, err)
		}
		rep.storeOps = append(rep.storeOps, storeOpsRun{t.name, rows})
	}
	return nil
}

// moduleRoot finds the directory of go.mod from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or above: run wxbench from the repository")
		}
		dir = parent
	}
}
