package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// loadResult is one load run against the local server.
type loadResult struct {
	store    string
	conns    int
	duration time.Duration // measured, after the warm-up
	requests int           // answered 200 within the measured window
	failures int           // any other answer, or a broken connection
	lat      []time.Duration
	// serverCPU is the CPU time the server process used in the measured
	// window (user + system), to set against the wall time: the load
	// generator shares the machine with it.
	serverCPU time.Duration
	// clientCPU is the load generator's (this process's) CPU time in the
	// same window.
	clientCPU time.Duration
}

func (r loadResult) rps() float64 { return float64(r.requests) / r.duration.Seconds() }

// measureLoad runs the local server (cmd/local, emulator on) with the store
// env names, logs a user in through it, then has conns connections send GET
// /validate with that skey back to back (HTTP/1.1 keep-alive, one request
// in flight per connection) for warmup+dur; requests in the last dur count.
//
// The generator runs with procs Ps (runtime.GOMAXPROCS), as wrk runs with
// -t threads: it shares the machine with the server, and one P keeps it from
// spinning on the core the server needs.
func measureLoad(ctx context.Context, bin, dir, store string, env []string, conns, procs int, warmup, dur time.Duration) (loadResult, error) {
	res := loadResult{store: store, conns: conns}
	port, err := freePort()
	if err != nil {
		return res, err
	}
	addr := "127.0.0.1:" + port
	logs, err := os.Create(filepath.Join(dir, "local-"+store+".log")) //nolint:gosec // the bench's own temp dir
	if err != nil {
		return res, err
	}
	defer func() { _ = logs.Close() }()
	cmd := exec.CommandContext(ctx, bin) //nolint:gosec // the bench's own binary
	cmd.Env = append([]string{"PORT=" + port, "HOST=127.0.0.1", "TZ=UTC", "PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()

	base := "http://" + addr
	skey, err := loginThrough(ctx, base)
	if err != nil {
		b, _ := os.ReadFile(logs.Name())
		return res, fmt.Errorf("local server (%s): %w\n%s", store, err, tail(b, 2000))
	}
	request := []byte("GET /validate HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + skey + "\r\nUser-Agent: wxbench\r\n\r\n")

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	start := time.Now()
	from, until := start.Add(warmup), start.Add(warmup+dur)
	type connResult struct {
		lat      []time.Duration
		failures int
		err      error
	}
	results := make([]connResult, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.lat = make([]time.Duration, 0, 1<<14)
			c, err := new(net.Dialer).DialContext(ctx, "tcp", addr)
			if err != nil {
				r.err = err
				return
			}
			defer func() { _ = c.Close() }()
			br := bufio.NewReaderSize(c, 4096)
			for {
				t := time.Now()
				if t.After(until) {
					return
				}
				if _, err := c.Write(request); err != nil {
					r.err = err
					return
				}
				status, err := readResponse(br)
				done := time.Now()
				if err != nil {
					r.err = err
					return
				}
				if t.Before(from) {
					continue
				}
				if status != http.StatusOK {
					r.failures++
					continue
				}
				r.lat = append(r.lat, done.Sub(t))
			}
		}()
	}
	time.Sleep(time.Until(from))
	cpuFrom, _ := processCPU(cmd.Process.Pid)
	clientFrom := ownCPU()
	wg.Wait()
	cpuTo, _ := processCPU(cmd.Process.Pid)
	res.serverCPU, res.clientCPU = cpuTo-cpuFrom, ownCPU()-clientFrom
	res.duration = dur
	for _, r := range results {
		if r.err != nil {
			return res, fmt.Errorf("load on %s: %w", store, r.err)
		}
		res.failures += r.failures
		res.requests += len(r.lat)
		res.lat = append(res.lat, r.lat...)
	}
	return res, nil
}

// readResponse reads one HTTP/1.1 response and returns its status. It
// expects what net/http's server sends for a small body: Content-Length, no
// chunking.
func readResponse(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 { // the blank line ending the headers
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", value)
			}
		}
	}
	if length < 0 {
		return 0, errors.New("response without Content-Length")
	}
	_, err = br.Discard(length)
	return status, err
}

// loginThrough waits for the local server at base, gets a login code from its
// emulator and logs in, returning the skey.
func loginThrough(ctx context.Context, base string) (string, error) {
	var code struct {
		Code string `json:"code"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := postJSON(ctx, base+"/emulator/wx.login?user=alice", "", &code)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the local server did not answer: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var login struct {
		Skey string `json:"skey"`
	}
	if err := postJSON(ctx, base+"/login", `{"code":"`+code.Code+`"}`, &login); err != nil {
		return "", err
	}
	if login.Skey == "" {
		return "", errors.New("login answered no skey")
	}
	return login.Skey, nil
}

func postJSON(ctx context.Context, url, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

func freePort() (string, error) {
	l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// processCPU returns the user+system CPU time a process has used so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unreadable /proc stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
