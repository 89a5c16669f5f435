package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// goBenchPackages are the packages with the benchmarks the report runs, and
// benchPattern selects them (other benchmarks in those packages are not
// part of the report).
var (
	goBenchPackages = []string{"./shared/wxcrypto", "./shared/session", "./shared/api", "./shared/platform/awslambda"}
	benchPattern    = "^(BenchmarkOpen|BenchmarkNewSkey|BenchmarkID|BenchmarkValidate|BenchmarkInvoke)$"
)

// goBenchResult is one benchmark's runs.
type goBenchResult struct {
	pkg    string
	name   string // without the -GOMAXPROCS suffix
	nsOp   []float64
	bOp    float64
	allocs float64
}

// runGoBenchmarks runs the benchmarks count times each and returns the raw
// output (benchstat reads it as is) and the parsed results.
func runGoBenchmarks(ctx context.Context, root string, count int, benchtime string) ([]byte, []goBenchResult, error) {
	args := []string{"test", "-run", "^$", "-bench", benchPattern, "-benchmem", "-count", strconv.Itoa(count), "-benchtime", benchtime}
	args = append(args, goBenchPackages...)
	cmd := exec.CommandContext(ctx, "go", args...) //nolint:gosec // the bench's own command
	cmd.Dir = root
	cmd.Env = os.Environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, nil, fmt.Errorf("go %s: %w\n%s%s", strings.Join(args, " "), err, out.Bytes(), errb.Bytes())
	}
	return out.Bytes(), parseGoBench(out.Bytes()), nil
}

// parseGoBench reads `go test -bench -benchmem` output.
func parseGoBench(out []byte) []goBenchResult {
	var res []goBenchResult
	index := map[string]int{}
	pkg := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = p
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		key := pkg + " " + name
		i, ok := index[key]
		if !ok {
			i = len(res)
			index[key] = i
			res = append(res, goBenchResult{pkg: pkg, name: name})
		}
		for j := 2; j+1 < len(f); j += 2 {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				continue
			}
			switch f[j+1] {
			case "ns/op":
				res[i].nsOp = append(res[i].nsOp, v)
			case "B/op":
				res[i].bOp = v
			case "allocs/op":
				res[i].allocs = v
			}
		}
	}
	return res
}

func medianFloat(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// formatNs formats a time per operation.
func formatNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}
