package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wxsession/wxsession/shared/platform/lambdatest"
)

// lambdaStats is what the runs of one function binary measured.
type lambdaStats struct {
	cold []time.Duration // spawn → first answer, one per spawn
	// coldCPU is the CPU time the process used up to its first answer, all
	// threads: what the cold start costs, less sensitive than wall time to
	// whatever else the machine runs.
	coldCPU []time.Duration
	init    []time.Duration // spawn → first GET …/invocation/next
	warm    []time.Duration // enqueue → answer, warm process
	// dur is the warm invocations' duration as Lambda bills it: event handed
	// to the function (its GET …/next answered) → its answer received.
	dur []time.Duration
	// handler is the warm invocations' latency_ms from the function's own
	// log lines: the HTTP handler's time, store call included, without the
	// Lambda adapter and runtime.
	handler []time.Duration
	maxRSS  int64 // bytes, the highest of any process
}

// function is one running function process on its own Runtime API.
type function struct {
	bin    string
	want   int // the status every answer must carry
	srv    *lambdatest.Server
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{}

	cold, init, cpu time.Duration
	warm, dur       []time.Duration
}

// spawn starts bin on a fresh Runtime API with ev already queued, as Lambda
// starts a function for a request that found no warm environment, and times
// spawn → first answer. The process keeps running for warm invocations until
// stop.
func spawn(ctx context.Context, bin string, env func(addr string) []string, want int, ev []byte) (*function, error) {
	f := &function{bin: bin, want: want, srv: lambdatest.NewServer(), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	first := f.srv.Enqueue(ev, time.Now().Add(30*time.Second))
	f.cmd = exec.CommandContext(ctx, bin) //nolint:gosec // the bench's own binaries
	f.cmd.Env = env(f.srv.Addr())
	f.cmd.Stdout, f.cmd.Stderr = f.stderr, f.stderr
	start := time.Now()
	if err := f.cmd.Start(); err != nil {
		f.srv.Close()
		return nil, err
	}
	go func() { _ = f.cmd.Wait(); close(f.exited) }()
	res, err := f.await(first)
	if err != nil {
		f.stop()
		return nil, fmt.Errorf("%s: first invocation: %w; stderr:\n%s", bin, err, f.stderr.String())
	}
	f.cold = res.At.Sub(start)
	f.cpu, _ = threadsCPU(f.cmd.Process.Pid)
	f.init = first.TakenAt().Sub(start)
	return f, nil
}

// invoke sends one warm event and waits for the answer.
func (f *function) invoke(ev []byte) error {
	t := time.Now()
	inv := f.srv.Enqueue(ev, time.Now().Add(30*time.Second))
	res, err := f.await(inv)
	if err != nil {
		return fmt.Errorf("%s: warm invocation: %w; stderr:\n%s", f.bin, err, f.stderr.String())
	}
	f.warm = append(f.warm, res.At.Sub(t))
	f.dur = append(f.dur, res.At.Sub(inv.TakenAt()))
	return nil
}

func (f *function) await(inv *lambdatest.Invocation) (lambdatest.Result, error) {
	select {
	case res := <-inv.Result():
		if res.IsError {
			return res, fmt.Errorf("invocation error: %s", res.Body)
		}
		status, err := proxyStatus(res.Body)
		if err != nil {
			return res, err
		}
		if status != f.want {
			return res, fmt.Errorf("got status %d, want %d: %.300s", status, f.want, res.Body)
		}
		return res, nil
	case <-f.exited:
		return lambdatest.Result{}, errors.New("the process exited")
	case <-time.After(30 * time.Second):
		return lambdatest.Result{}, errors.New("no answer within 30 s")
	}
}

// peakRSS reads the process's peak RSS: the kernel's high-water mark for its
// memory. (Not wait4's ru_maxrss: for a child started with vfork, as os/exec
// starts them, that counts the parent's memory from before the exec.)
func (f *function) peakRSS() (int64, error) { return peakRSS(f.cmd.Process.Pid) }

// stop ends the process with SIGTERM, as Lambda does, and closes its
// Runtime API.
func (f *function) stop() {
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
	case <-time.After(5 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.exited
	}
	f.srv.Close()
}

// threadsCPU returns the CPU time all threads of a live process have run, to
// the nanosecond (from /proc/<pid>/task/*/schedstat; /proc/<pid>/stat counts
// in 10 ms ticks).
func threadsCPU(pid int) (time.Duration, error) {
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(stats) == 0 {
		return 0, fmt.Errorf("no schedstat for %d", pid)
	}
	var total time.Duration
	for _, p := range stats {
		b, err := os.ReadFile(p) //nolint:gosec // /proc
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		total += time.Duration(ns)
	}
	return total, nil
}

// peakRSS reads VmHWM, the peak resident set size, of a live process.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// handlerLatencies reads latency_ms from the last n request log lines of a
// function's output (the warm invocations'); none for a function that logs
// no such lines (the floors).
func handlerLatencies(log string, n int) []time.Duration {
	var out []time.Duration
	for _, line := range strings.Split(log, "\n") {
		var l struct {
			Msg       string   `json:"msg"`
			LatencyMS *float64 `json:"latency_ms"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "request" || l.LatencyMS == nil {
			continue
		}
		out = append(out, time.Duration(*l.LatencyMS*float64(time.Millisecond)))
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lambdaJob is one binary to measure.
type lambdaJob struct {
	label string // row name in the report
	fn    string // the workload (function name)
	bin   string
	env   []string // added to the function's environment
}

// measureLambda spawns every job's binary spawns times, round-robin across
// jobs so that whatever else the machine is doing weighs on all of them
// alike. The last spawn of each stays up, and the warm invocations go to
// those processes in turn, one at a time, for the same reason.
func measureLambda(ctx context.Context, fx *fixtures, jobs []lambdaJob, spawns, invocations int, progress func(string)) (map[string]*lambdaStats, error) {
	loads, err := fx.workloads(ctx)
	if err != nil {
		return nil, err
	}
	stats := map[string]*lambdaStats{}
	for _, j := range jobs {
		stats[j.label] = &lambdaStats{}
	}
	warm := make([]*function, len(jobs))
	defer func() {
		for _, f := range warm {
			if f != nil {
				f.stop()
			}
		}
	}()
	for s := range spawns {
		for i, j := range jobs {
			w := loads[j.fn]
			evs, err := w.events(ctx, 1)
			if err != nil {
				return nil, err
			}
			env := func(addr string) []string { return append(fx.env(addr, j.fn), j.env...) }
			f, err := spawn(ctx, j.bin, env, w.want, evs[0])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", j.label, err)
			}
			st := stats[j.label]
			st.cold = append(st.cold, f.cold)
			st.coldCPU = append(st.coldCPU, f.cpu)
			st.init = append(st.init, f.init)
			if s < spawns-1 {
				rss, err := f.peakRSS()
				f.stop()
				if err != nil {
					return nil, err
				}
				st.maxRSS = max(st.maxRSS, rss)
				continue
			}
			warm[i] = f
		}
		progress(fmt.Sprintf("spawn %d/%d of each function", s+1, spawns))
	}

	events := make([][][]byte, len(jobs))
	for i, j := range jobs {
		if events[i], err = loads[j.fn].events(ctx, invocations); err != nil {
			return nil, err
		}
	}
	for n := range invocations {
		for i := range jobs {
			if err := warm[i].invoke(events[i][n]); err != nil {
				return nil, fmt.Errorf("%s: %w", jobs[i].label, err)
			}
		}
	}
	for i, j := range jobs {
		f, st := warm[i], stats[j.label]
		rss, err := f.peakRSS()
		if err != nil {
			return nil, err
		}
		st.maxRSS = max(st.maxRSS, rss)
		st.warm, st.dur = f.warm, f.dur
		f.stop()
		warm[i] = nil
		st.handler = handlerLatencies(f.stderr.String(), invocations)
	}
	return stats, nil
}
