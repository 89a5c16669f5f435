package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// loadResult is one load run against the local server.
type loadResult struct {
	Store      string
	RPS        float64 // answered 200 per second of the measured run
	P50, P99   time.Duration
	Failed     int
	ServerCPU  float64       // CPUs the server used, over its whole life
	PerRequest time.Duration // its CPU time per request served
	ClientCPU  float64       // CPUs the load generator used in the measured run
}

// measureLoad runs the local server (cmd/local, emulator on) with the store
// in env, logs a user in through it, then has vegeta keep conns keep-alive
// connections busy with GET /validate, one request in flight on each, for
// warmup (not counted) and then dur. The generator runs with procs Ps, as
// wrk runs with -t threads: it shares the cores with the server.
func measureLoad(ctx context.Context, bin, logFile, store string, env []string, conns, procs int, warmup, dur time.Duration) (loadResult, error) {
	res := loadResult{Store: store}
	l, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	logs, err := os.Create(logFile) //nolint:gosec // the bench's own temp dir
	if err != nil {
		return res, err
	}
	defer func() { _ = logs.Close() }()
	cmd := exec.CommandContext(ctx, bin) //nolint:gosec // the bench's own binary
	cmd.Env = append([]string{"PORT=" + port, "HOST=127.0.0.1", "TZ=UTC", "PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		return res, err
	}
	started := time.Now()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	}()

	base := "http://127.0.0.1:" + port
	var code struct{ Code string }
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err = post(base+"/emulator/wx.login?user=alice", "", &code); err == nil || time.Now().After(deadline) {
			break
		}
	}
	var login struct{ Skey string }
	if err == nil {
		err = post(base+"/login", `{"code":"`+code.Code+`"}`, &login)
	}
	if err != nil {
		return res, fmt.Errorf("local server (%s store): %w; its log is %s", store, err, logFile)
	}

	// conns workers and connections at an unlimited rate: each worker sends
	// its next request when the previous answer is read.
	attack := func(d time.Duration) <-chan *vegeta.Result {
		n := uint64(conns) //nolint:gosec // a small positive flag
		return vegeta.NewAttacker(vegeta.Workers(n), vegeta.MaxWorkers(n), vegeta.Connections(conns), vegeta.MaxConnections(conns)).
			Attack(vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: base + "/validate",
				Header: http.Header{"Authorization": {"Bearer " + login.Skey}}}), vegeta.Rate{}, d, "")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	served := uint64(1) // the login
	for range attack(warmup) {
		served++
	}
	var m vegeta.Metrics
	cpu0 := ownCPU()
	for r := range attack(dur) {
		m.Add(r)
	}
	m.Close()
	res.ClientCPU = (ownCPU() - cpu0).Seconds() / m.Duration.Seconds()

	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	stopped = true
	served += m.Requests
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	res.ServerCPU = cpu.Seconds() / time.Since(started).Seconds()
	res.PerRequest = cpu / time.Duration(served) //nolint:gosec // a count of requests
	res.RPS, res.P50, res.P99 = m.Throughput, m.Latencies.P50, m.Latencies.P99
	res.Failed = int(m.Requests) - m.StatusCodes["200"] //nolint:gosec // a count of requests
	return res, nil
}

func post(url, body string, out any) error {
	resp, err := http.Post(url, "application/json", strings.NewReader(body)) //nolint:gosec,noctx // the local server under test
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// ownCPU is the CPU time this process has used.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
