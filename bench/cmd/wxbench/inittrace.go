package main

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// initCost is one package's init as GODEBUG=inittrace=1 reports it, over
// several runs.
type initCost struct {
	pkg    string
	clock  []time.Duration
	bytes  int64
	allocs int64
}

// initTrace is where a binary's package initialisation goes.
type initTrace struct {
	pkgs  []initCost      // by median clock time, largest first
	total []time.Duration // per run: the sum of every package's init
	bytes int64
}

// traceInits runs each binary runs times, taking turns, with
// GODEBUG=inittrace=1 and a configuration it refuses (so it exits right after
// its package initialisation), and collects what each package's init cost.
func traceInits(ctx context.Context, runs int, bins ...string) []initTrace {
	traces := make([]initTrace, len(bins))
	index := make([]map[string]int, len(bins))
	for i := range bins {
		index[i] = map[string]int{}
	}
	for range runs {
		for i, bin := range bins {
			traceInit(ctx, bin, &traces[i], index[i])
		}
	}
	for i := range traces {
		slices.SortFunc(traces[i].pkgs, func(a, b initCost) int { return int(median(b.clock) - median(a.clock)) })
	}
	return traces
}

// traceInit runs bin once and adds what it reports to t.
func traceInit(ctx context.Context, bin string, t *initTrace, index map[string]int) {
	cmd := exec.CommandContext(ctx, bin) //nolint:gosec // the bench's own binary
	cmd.Env = []string{"GODEBUG=inittrace=1", "WX_APPID=wx1234567890abcdef", "SESSION_STORE=none"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run() // it exits 2 on the configuration, as intended
	var total time.Duration
	var allocated int64
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		// init github.com/x/y @1.6 ms, 0.65 ms clock, 586696 bytes, 3151 allocs
		f := strings.Fields(sc.Text())
		if len(f) < 11 || f[0] != "init" || f[6] != "clock," {
			continue
		}
		clock, err := strconv.ParseFloat(f[4], 64)
		if err != nil {
			continue
		}
		b, _ := strconv.ParseInt(f[7], 10, 64)
		a, _ := strconv.ParseInt(f[9], 10, 64)
		d := time.Duration(clock * float64(time.Millisecond))
		i, ok := index[f[1]]
		if !ok {
			i = len(t.pkgs)
			index[f[1]] = i
			t.pkgs = append(t.pkgs, initCost{pkg: f[1], bytes: b, allocs: a})
		}
		t.pkgs[i].clock = append(t.pkgs[i].clock, d)
		total += d
		allocated += b
	}
	t.total = append(t.total, total)
	t.bytes = allocated
}
