// Package platform runs one http.Handler on whichever runtime the process was
// started by: AWS Lambda, Tencent SCF, or plain HTTP. The handler is the
// product; the runtimes only translate envelopes.
//
// Both cloud runtimes are built in by default. A release build leaves out the
// other cloud's, and its library, with an opt-out tag: -tags
// wxsession_nolambda drops AWS Lambda, -tags wxsession_noscf Tencent SCF.
// Plain HTTP is always there. A binary started by a runtime it was built
// without stops with one clear line naming the tag.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// shutdownGrace is how long in-flight requests may take to finish after
// SIGTERM or SIGINT.
const shutdownGrace = 10 * time.Second

// Serve runs h on the runtime the environment names and returns only when the
// process should exit:
//   - AWS_LAMBDA_RUNTIME_API set: AWS Lambda;
//   - else _LAMBDA_SERVER_PORT set: Tencent SCF (Go1 runtime);
//   - else plain HTTP on port (the configuration's PORT, validated there), as
//     Tencent Web Functions run it.
func Serve(h http.Handler, port int) {
	switch Detect(os.Getenv) {
	case RuntimeLambda:
		startOrExit(startLambda, h, "AWS_LAMBDA_RUNTIME_API", "AWS Lambda", "wxsession_nolambda")
		return
	case RuntimeSCF:
		startOrExit(startSCF, h, "_LAMBDA_SERVER_PORT", "Tencent SCF", "wxsession_noscf")
		return
	}
	if err := ListenAndServe(context.Background(), net.JoinHostPort("", strconv.Itoa(port)), h); err != nil {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}

// startOrExit serves h with start, the runtime the environment variable named
// v selected; start is nil when the opt-out build tag tag left that runtime
// out.
func startOrExit(start func(http.Handler), h http.Handler, v, runtime, tag string) {
	if start == nil {
		fmt.Fprintf(os.Stderr, "wxsession: configuration: %s is set, but this binary was built without the %s runtime (-tags %s)\n", v, runtime, tag)
		os.Exit(2)
	}
	start(h)
}

// Runtime names the environment a function binary runs in.
type Runtime string

// The runtimes Serve knows.
const (
	RuntimeLambda Runtime = "lambda" // AWS Lambda (provided.al2023), Runtime API
	RuntimeSCF    Runtime = "scf"    // Tencent SCF Go1 runtime, net/rpc
	RuntimeHTTP   Runtime = "http"   // plain HTTP: local runs, Tencent Web Functions
)

// Detect names the runtime the environment (read through getenv) describes.
// AWS_LAMBDA_RUNTIME_API is checked first: _LAMBDA_SERVER_PORT is also the
// variable of Lambda's retired go1.x runtime, so an environment with both is
// Lambda's, and the Runtime API is the protocol to speak.
func Detect(getenv func(string) string) Runtime {
	switch {
	case getenv("AWS_LAMBDA_RUNTIME_API") != "":
		return RuntimeLambda
	case getenv("_LAMBDA_SERVER_PORT") != "":
		return RuntimeSCF
	}
	return RuntimeHTTP
}

// ListenAndServe serves h over plain HTTP on addr until ctx is done or the
// process receives SIGTERM or SIGINT, then lets in-flight requests finish.
func ListenAndServe(ctx context.Context, addr string, h http.Handler) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	slog.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
