package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machine describes where the bench ran.
type machine struct {
	goVersion string
	cpu       string
	cores     int
	kernel    string
}

func describeMachine(ctx context.Context) machine {
	m := machine{cores: runtime.NumCPU(), cpu: "unknown CPU", kernel: "unknown kernel"}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.goVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

// cpuSnapshot is the CPU time every process had used at one moment, and the
// machine's busy and total time.
type cpuSnapshot struct {
	at          time.Time
	procs       map[int]procCPU
	busy, total float64 // clock ticks, all CPUs
}

type procCPU struct {
	comm string
	cpu  time.Duration
}

func takeCPUSnapshot() cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), procs: map[int]procCPU{}}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			n, _ := strconv.ParseFloat(v, 64)
			s.total += n
			if i != 3 && i != 4 { // idle, iowait
				s.busy += n
			}
		}
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(p) //nolint:gosec // /proc
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		cpu, err := processCPU(pid)
		if err != nil {
			continue
		}
		s.procs[pid] = procCPU{comm: string(b[open+1 : end]), cpu: cpu}
	}
	return s
}

// load says how busy the machine was between two snapshots: the share of
// all CPUs in use, and the processes that used the most CPU in between
// (those that lived through both snapshots).
func load(from, to cpuSnapshot) (busy float64, top []string) {
	if to.total > from.total {
		busy = (to.busy - from.busy) / (to.total - from.total)
	}
	type use struct {
		name string
		cpu  time.Duration
	}
	byName := map[string]time.Duration{}
	for pid, p := range to.procs {
		if q, ok := from.procs[pid]; ok && q.comm == p.comm && p.cpu > q.cpu {
			byName[p.comm] += p.cpu - q.cpu
		}
	}
	var uses []use
	for n, c := range byName {
		uses = append(uses, use{n, c})
	}
	slices.SortFunc(uses, func(a, b use) int { return int(b.cpu - a.cpu) })
	wall := to.at.Sub(from.at).Seconds()
	for i, u := range uses {
		if i == 6 || u.cpu.Seconds() < 0.02*wall {
			break
		}
		top = append(top, fmt.Sprintf("%s %.0f%%", u.name, 100*u.cpu.Seconds()/wall))
	}
	return busy, top
}

// selfCPU is the CPU time this process and its waited-for children used.
func selfCPU() time.Duration {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

// ownCPU is the CPU time this process has used.
func ownCPU() time.Duration {
	var self syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano())
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
