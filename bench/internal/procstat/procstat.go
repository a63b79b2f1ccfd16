// Package procstat is what the bench commands read of a server process from
// Linux's /proc (CPU ticks, resident memory), the median they report, and the
// pinned fortio they drive it with, installed into bench/.tools when missing.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// FortioModule is the fortio the benchmarks use: newer versions do not
// install here.
const FortioModule = "fortio.org/fortio@v1.66.5"

// EnsureFortio returns the fortio binary in benchDir/.tools, installing
// FortioModule there when it is missing; who names the command installing it.
func EnsureFortio(benchDir, who string) (string, error) {
	tools := filepath.Join(benchDir, ".tools")
	bin := filepath.Join(tools, "fortio")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintf(os.Stderr, "%s: installing %s into %s\n", who, FortioModule, tools)
	cmd := exec.Command("go", "install", FortioModule)
	cmd.Env = append(os.Environ(), "GOBIN="+tools)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s: %w", FortioModule, err)
	}
	return bin, nil
}

// CPUTicks returns the utime and stime of a process, in clock ticks.
func CPUTicks(pid int) (user, sys int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	user, sys, err = ParseStat(b)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return user, sys, nil
}

// ParseStat returns utime and stime, fields 14 and 15, of a /proc/PID/stat.
func ParseStat(b []byte) (user, sys int64, err error) {
	// The command name, field 2, is in parentheses and may hold spaces and
	// parentheses: count fields after its last closing one.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("%d fields after the name, want at least 13", len(f))
	}
	user, err1 := strconv.ParseInt(f[11], 10, 64)
	sys, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return user, sys, nil
}

// VmHWM returns a process's peak resident set size in KiB.
func VmHWM(pid int) (int64, error) { return status(pid, "VmHWM") }

// VmRSS returns a process's resident set size in KiB.
func VmRSS(pid int) (int64, error) { return status(pid, "VmRSS") }

func status(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	v, err := StatusKiB(string(b), field)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return v, nil
}

// StatusKiB reads a field in kB ("VmRSS:	  1234 kB") from a /proc/PID/status.
func StatusKiB(status, field string) (int64, error) {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			v, ok := strings.CutSuffix(strings.TrimSpace(v), " kB")
			if !ok {
				return 0, fmt.Errorf("%s is not in kB", field)
			}
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s", field)
}

// ClockTicks is CLK_TCK (getconf), 100 when getconf fails.
func ClockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return float64(n)
		}
	}
	return 100
}

// Median of v; the mean of the middle two for an even count, 0 for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}
