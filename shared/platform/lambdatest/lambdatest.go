// Package lambdatest serves the AWS Lambda Runtime API to one function
// process, standing in for Lambda where Lambda (or `sam local`) cannot run:
// the runtime tests and the benchmarks drive the built function binaries
// through it.
//
// It serves GET …/invocation/next, POST …/invocation/{id}/response and
// …/error, POST /runtime/init/error, and the Extensions API's register and
// event/next, which aws-lambda-go's SIGTERM handling uses. It records when the
// function took each invocation and when its answer arrived, so a caller can
// time a cold start (spawn → first answer) and warm invocations.
package lambdatest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FunctionARN is the ARN handed to the function with every invocation.
const FunctionARN = "arn:aws:lambda:ap-east-1:123456789012:function:wxsession-test"

// Server is a Lambda Runtime API for one function process. Its methods are
// safe for concurrent use.
type Server struct {
	srv     *httptest.Server
	pending chan *Invocation
	done    chan struct{}
	close   sync.Once

	mu         sync.Mutex
	seq        int
	waiting    map[string]*Invocation
	initErrors []string
	extensions []string
	nexts      int
}

// Invocation is one event queued for the function.
type Invocation struct {
	ID       string
	Payload  []byte
	Deadline time.Time

	taken   chan struct{}
	takenAt time.Time
	result  chan Result
}

// Result is what the function posted for an invocation.
type Result struct {
	Body    []byte
	IsError bool // posted to …/error rather than …/response
	// At is when the answer reached the server.
	At time.Time
}

// Taken is closed when the function has fetched the invocation.
func (inv *Invocation) Taken() <-chan struct{} { return inv.taken }

// TakenAt is when the function fetched the invocation; zero until Taken is
// closed.
func (inv *Invocation) TakenAt() time.Time {
	select {
	case <-inv.taken:
		return inv.takenAt
	default:
		return time.Time{}
	}
}

// Result receives the function's answer, once.
func (inv *Invocation) Result() <-chan Result { return inv.result }

// NewServer starts a Runtime API on a loopback port. Close it when done.
func NewServer() *Server {
	s := &Server{pending: make(chan *Invocation, 1024), done: make(chan struct{}), waiting: map[string]*Invocation{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", s.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		s.deliver(w, r, false)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) {
		s.deliver(w, r, true)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.initErrors = append(s.initErrors, string(b))
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /2020-01-01/extension/register", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.extensions = append(s.extensions, r.Header.Get("Lambda-Extension-Name"))
		s.mu.Unlock()
		w.Header().Set("Lambda-Extension-Identifier", "ext-"+r.Header.Get("Lambda-Extension-Name"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"functionName":"wxsession","functionVersion":"$LATEST","handler":"bootstrap"}`)
	})
	mux.HandleFunc("GET /2020-01-01/extension/event/next", func(w http.ResponseWriter, r *http.Request) {
		// An extension that registered for no events waits here until shutdown.
		select {
		case <-s.done:
		case <-r.Context().Done():
		}
	})
	s.srv = httptest.NewServer(mux)
	return s
}

// Addr is the value for AWS_LAMBDA_RUNTIME_API: host:port, no scheme.
func (s *Server) Addr() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// Close answers the function's pending long poll with 410 Gone and stops the
// server.
func (s *Server) Close() {
	s.close.Do(func() {
		close(s.done)
		s.srv.Close()
	})
}

// Enqueue queues payload for the function, to be answered by deadline, and
// returns at once. The function fetches queued invocations in order; one
// enqueued before the process starts is handed over on its first request.
func (s *Server) Enqueue(payload []byte, deadline time.Time) *Invocation {
	s.mu.Lock()
	s.seq++
	inv := &Invocation{
		ID:       fmt.Sprintf("8f5e0e3c-0000-4000-8000-%012d", s.seq),
		Payload:  payload,
		Deadline: deadline,
		taken:    make(chan struct{}),
		result:   make(chan Result, 1),
	}
	s.waiting[inv.ID] = inv
	s.mu.Unlock()
	s.pending <- inv
	return inv
}

// InitErrors returns the bodies the function posted to /runtime/init/error.
func (s *Server) InitErrors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.initErrors...)
}

// Extensions returns the names of the extensions that registered.
func (s *Server) Extensions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.extensions...)
}

// Nexts returns how many times the function asked for an invocation.
func (s *Server) Nexts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nexts
}

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.nexts++
	s.mu.Unlock()
	select {
	case inv := <-s.pending:
		inv.takenAt = time.Now()
		close(inv.taken)
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", inv.ID)
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.Deadline.UnixMilli(), 10))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", FunctionARN)
		w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-65f1c2d3-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(inv.Payload)
	case <-s.done:
		w.WriteHeader(http.StatusGone)
	case <-r.Context().Done():
	}
}

func (s *Server) deliver(w http.ResponseWriter, r *http.Request, isError bool) {
	b, err := io.ReadAll(r.Body)
	at := time.Now()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	inv := s.waiting[id]
	delete(s.waiting, id)
	s.mu.Unlock()
	if inv == nil {
		http.Error(w, `{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}`, http.StatusBadRequest)
		return
	}
	inv.result <- Result{Body: b, IsError: isError, At: at}
	w.WriteHeader(http.StatusAccepted)
}
