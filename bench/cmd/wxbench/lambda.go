package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wxsession/wxsession/shared/emulator"
	"github.com/wxsession/wxsession/shared/platform/lambdatest"
	"github.com/wxsession/wxsession/shared/session"
	"github.com/wxsession/wxsession/shared/store/dynamo"
)

// job is one binary to measure: what its invocation i sends, the status it
// answers, and what its runs measured.
type job struct {
	label, bin string
	want       int
	event      func(i int) ([]byte, error)

	cold, cpu, init []time.Duration // per spawn: to the first answer; CPU time to it; to the first GET …/next
	warm, dur       []time.Duration // per warm invocation: queued → answer; handed over → answer (billed)
	handler         []time.Duration // latency_ms of the warm invocations' own log lines
	rss             int64           // the highest VmHWM of any of its processes, in kB
}

// function is one running function process on its own Runtime API.
type function struct {
	srv    *lambdatest.Server
	cmd    *exec.Cmd
	out    *os.File // its stdout and stderr
	exited chan struct{}
}

// spawn starts bin on a fresh Runtime API with its first event already
// queued, as Lambda starts a function for a request that found no warm
// environment, and waits for that first answer.
func spawn(bin string, env []string, want int, ev []byte, j *job) (*function, error) {
	out, err := os.CreateTemp("", "wxbench-*.log")
	if err != nil {
		return nil, err
	}
	f := &function{srv: lambdatest.NewServer(), out: out, exited: make(chan struct{})}
	first := f.srv.Enqueue(ev, time.Now().Add(30*time.Second))
	f.cmd = exec.Command(bin) //nolint:gosec,noctx // the bench's own binaries; stop ends them
	f.cmd.Env = slices.Concat(env, []string{"AWS_LAMBDA_RUNTIME_API=" + f.srv.Addr()})
	f.cmd.Stdout, f.cmd.Stderr = out, out
	start := time.Now()
	if err := f.cmd.Start(); err != nil {
		f.srv.Close()
		_ = out.Close()
		return nil, errors.Join(err, os.Remove(out.Name()))
	}
	go func() { _ = f.cmd.Wait(); close(f.exited) }()
	res, err := f.await(first, want)
	if err == nil && j != nil {
		var cpu time.Duration
		cpu, err = threadsCPU(f.cmd.Process.Pid)
		j.cold, j.cpu, j.init = append(j.cold, res.At.Sub(start)), append(j.cpu, cpu), append(j.init, first.TakenAt().Sub(start))
	}
	if err != nil {
		f.stop()
		return nil, err
	}
	return f, nil
}

// invoke sends one event to a warm function and waits for the answer.
func (f *function) invoke(ev []byte, want int, j *job) ([]byte, error) {
	t := time.Now()
	inv := f.srv.Enqueue(ev, t.Add(30*time.Second))
	res, err := f.await(inv, want)
	if err == nil && j != nil {
		j.warm, j.dur = append(j.warm, res.At.Sub(t)), append(j.dur, res.At.Sub(inv.TakenAt()))
	}
	return res.Body, err
}

func (f *function) await(inv *lambdatest.Invocation, want int) (lambdatest.Result, error) {
	var problem string
	select {
	case res := <-inv.Result():
		var r struct{ StatusCode int }
		if !res.IsError && json.Unmarshal(res.Body, &r) == nil && r.StatusCode == want {
			return res, nil
		}
		problem = fmt.Sprintf("answered %.300s, want status %d", res.Body, want)
	case <-f.exited:
		problem = "the process exited"
	case <-time.After(30 * time.Second):
		problem = "no answer within 30 s"
	}
	log, _ := os.ReadFile(f.out.Name()) //nolint:gosec // its own temp file
	return lambdatest.Result{}, fmt.Errorf("%s: %s; output:\n%s", f.cmd.Path, problem, log)
}

// stop ends the process with SIGTERM, as Lambda does, and returns its peak
// RSS (kB) and output.
func (f *function) stop() (int64, string) {
	rss, _ := procField(f.cmd.Process.Pid, "status", "VmHWM:")
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
	case <-time.After(5 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.exited
	}
	f.srv.Close()
	log, _ := os.ReadFile(f.out.Name()) //nolint:gosec // its own temp file
	_ = f.out.Close()
	_ = os.Remove(f.out.Name())
	return rss, string(log)
}

// measureFunctions spawns each job's binary spawns times, round-robin across
// jobs so that whatever else the machine does weighs on all alike; the last
// process of each then serves the warm invocations, again in turn.
func measureFunctions(jobs []*job, env []string, spawns, invocations int) error {
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
			ev, err := j.event(s)
			if err != nil {
				return err
			}
			if warm[i], err = spawn(j.bin, env, j.want, ev, j); err != nil {
				return fmt.Errorf("%s: %w", j.label, err)
			}
			if s < spawns-1 {
				rss, _ := warm[i].stop()
				j.rss, warm[i] = max(j.rss, rss), nil
			}
		}
		progress("spawn %d/%d of each of %d binaries", s+1, spawns, len(jobs))
	}
	events := make([][][]byte, len(jobs)) // made before the timing starts
	for i, j := range jobs {
		for n := range invocations {
			ev, err := j.event(spawns + n)
			if err != nil {
				return err
			}
			events[i] = append(events[i], ev)
		}
	}
	for n := range invocations {
		for i, j := range jobs {
			if _, err := warm[i].invoke(events[i][n], j.want, j); err != nil {
				return fmt.Errorf("%s: %w", j.label, err)
			}
		}
	}
	for i, j := range jobs {
		rss, log := warm[i].stop()
		j.rss, j.handler, warm[i] = max(j.rss, rss), handlerLatencies(log, invocations), nil
	}
	return nil
}

// The app the functions run as; the seal key makes them seal session_keys as
// in production.
const (
	appID   = "wx1234567890abcdef"
	secret  = "0123456789abcdef0123456789abcdef"
	sealKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// fixtures are what the function processes need around them: the WeChat
// emulator, a fresh DynamoDB Local table, and a login function process that
// makes the sessions validate, decrypt and logout are invoked with.
type fixtures struct {
	emu    *emulator.Emulator
	wx     *httptest.Server
	env    []string
	login  *function
	events map[string]string // the sample events of events/lambda, by function
}

func newFixtures(ctx context.Context, endpoint, loginBin string) (*fixtures, error) {
	fx := &fixtures{emu: emulator.New(appID, secret), events: map[string]string{}}
	fx.wx = httptest.NewServer(fx.emu)
	table := "wxsession-bench-" + strings.ToLower(session.NewSkey()[:10])
	fx.env = []string{
		"WX_APPID=" + appID, "WX_SECRET=" + secret, "WX_API_BASE=" + fx.wx.URL, "SESSION_SEAL_KEY=" + sealKey,
		"SESSION_STORE=dynamodb", "SESSION_TABLE=" + table, "TZ=UTC",
		"AWS_ENDPOINT_URL_DYNAMODB=" + endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_SESSION_TOKEN=local",
		"AWS_LAMBDA_FUNCTION_NAME=wxsession-bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
	}
	for _, fn := range functions {
		b, err := os.ReadFile(filepath.Join("events", "lambda", fn+"-httpapi.json")) //nolint:gosec // the repository's sample events
		if err != nil {
			return fx, err
		}
		fx.events[fn] = string(b)
	}
	client := dynamo.NewClient(dynamo.ClientOptions{Region: "us-east-1", Endpoint: endpoint,
		Credentials: aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}})
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := dynamo.EnsureTable(tctx, client, table); err != nil {
		return fx, fmt.Errorf("DynamoDB Local at %s: %w", endpoint, err)
	}
	// A DynamoDB Local just started may time its first requests out on a
	// busy machine: try a few times.
	var err error
	for range 3 {
		if fx.login, err = spawn(loginBin, fx.env, http.StatusOK, fx.event("login", "CODE", fx.emu.Code("setup")), nil); err == nil {
			break
		}
	}
	return fx, err
}

func (fx *fixtures) close() {
	if fx.login != nil {
		fx.login.stop()
	}
	fx.wx.Close()
}

// event fills a sample event's ${NAME} placeholders with JSON-safe values
// (codes, skeys, base64), given as name, value pairs.
func (fx *fixtures) event(fn string, kv ...string) []byte {
	for i := 0; i+1 < len(kv); i += 2 {
		kv[i] = "${" + kv[i] + "}"
	}
	return []byte(strings.NewReplacer(kv...).Replace(fx.events[fn]))
}

// newSession logs user in through the login function and returns the skey.
func (fx *fixtures) newSession(user string) (string, error) {
	body, err := fx.login.invoke(fx.event("login", "CODE", fx.emu.Code(user)), http.StatusOK, nil)
	var r struct{ Body string }
	var l struct{ Skey string }
	if err == nil && (json.Unmarshal(body, &r) != nil || json.Unmarshal([]byte(r.Body), &l) != nil || l.Skey == "") {
		err = fmt.Errorf("login answered no skey: %.300s", body)
	}
	return l.Skey, err
}

// jobs are the functions to measure, and what each is invoked with:
// validate and decrypt use one session throughout (the steady state: no
// renewal is due); login needs a fresh code per invocation, logout a fresh
// session. The floor functions answer 200 to anything; the one-GetItem floor
// reads validate's session item.
func (fx *fixtures) jobs(bin func(variant, string) string) ([]*job, error) {
	vera, err := fx.newSession("vera")
	if err != nil {
		return nil, err
	}
	dora, err := fx.newSession("dora")
	if err != nil {
		return nil, err
	}
	enc, err := fx.emu.Encrypt(fx.emu.OpenID("dora"), nil)
	if err != nil {
		return nil, err
	}
	fx.env = append(fx.env, "FLOOR_KEY=s#"+session.SkeyHash(vera))
	same := func(ev []byte) func(int) ([]byte, error) { return func(int) ([]byte, error) { return ev, nil } }
	validate := same(fx.event("validate", "SKEY", vera))
	return []*job{
		{label: "login", bin: bin(lambdaRelease, "login"), want: http.StatusOK, event: func(int) ([]byte, error) {
			return fx.event("login", "CODE", fx.emu.Code("lena")), nil
		}},
		{label: "validate", bin: bin(lambdaRelease, "validate"), want: http.StatusOK, event: validate},
		{label: "decrypt", bin: bin(lambdaRelease, "decrypt"), want: http.StatusOK, event: same(fx.event("decrypt",
			"SKEY", dora, "ENCRYPTED_DATA", enc.EncryptedData, "IV", enc.IV))},
		{label: "logout", bin: bin(lambdaRelease, "logout"), want: http.StatusNoContent, event: func(int) ([]byte, error) {
			skey, err := fx.newSession("otto")
			return fx.event("logout", "SKEY", skey), err
		}},
		{label: "validate, all stores", bin: bin(allRelease, "validate"), want: http.StatusOK, event: validate},
		{label: "floor: bare aws-lambda-go", bin: bin(lambdaRelease, "bare"), want: http.StatusOK, event: validate},
		{label: "floor: one GetItem", bin: bin(lambdaRelease, "getitem"), want: http.StatusOK, event: validate},
	}, nil
}

// handlerLatencies reads latency_ms from the last n request log lines of a
// function's output (the warm invocations'); none for the bare floor.
func handlerLatencies(log string, n int) []time.Duration {
	var out []time.Duration
	for _, line := range strings.Split(log, "\n") {
		var l struct {
			Msg       string   `json:"msg"`
			LatencyMS *float64 `json:"latency_ms"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" && l.LatencyMS != nil {
			out = append(out, time.Duration(*l.LatencyMS*float64(time.Millisecond)))
		}
	}
	return out[max(0, len(out)-n):]
}

// threadsCPU returns the CPU time all threads of a live process have run, to
// the nanosecond (/proc/<pid>/stat counts in 10 ms ticks).
func threadsCPU(pid int) (time.Duration, error) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	var total time.Duration
	for _, t := range tasks {
		ns, _ := procField(pid, strings.TrimPrefix(t, fmt.Sprintf("/proc/%d/", pid))+"/schedstat", "")
		total += time.Duration(ns) // 0 for a thread that has exited
	}
	if total == 0 {
		return 0, fmt.Errorf("no CPU time in /proc/%d/task/*/schedstat", pid)
	}
	return total, nil
}

// procField reads the number after prefix at the start of a line of
// /proc/<pid>/<file>.
func procField(pid int, file, prefix string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file)) //nolint:gosec // /proc
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok && len(strings.Fields(v)) > 0 {
			return strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no %q in /proc/%d/%s: %w", prefix, pid, file, err)
}
