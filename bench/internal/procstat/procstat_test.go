package procstat

import (
	"os"
	"runtime"
	"testing"
)

func TestParseStat(t *testing.T) {
	// A command name with a space and a closing parenthesis of its own; utime
	// is 123 and stime 45 (fields 14 and 15).
	stat := "4242 (http) server) S 1 4242 4242 0 -1 4194560 1000 0 0 0 123 45 0 0 20 0 3 0 100 2000000 500 18446744073709551615\n"
	user, sys, err := ParseStat([]byte(stat))
	if err != nil || user != 123 || sys != 45 {
		t.Errorf("ParseStat = %d, %d, %v; want 123, 45", user, sys, err)
	}
	for _, bad := range []string{"4242 httpserver S 1", "4242 (httpserver) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 12x 45 0"} {
		if _, _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) accepted", bad)
		}
	}
}

func TestStatusKiB(t *testing.T) {
	status := "Name:\thttpserver\nVmPeak:\t  999999 kB\nVmHWM:\t   13516 kB\nVmRSS:\t   12000 kB\nThreads:\t5\n"
	if v, err := StatusKiB(status, "VmHWM"); err != nil || v != 13516 {
		t.Errorf("VmHWM = %d, %v", v, err)
	}
	if v, err := StatusKiB(status, "VmRSS"); err != nil || v != 12000 {
		t.Errorf("VmRSS = %d, %v", v, err)
	}
	if _, err := StatusKiB(status, "VmSwap"); err == nil {
		t.Error("a missing field was read")
	}
	if _, err := StatusKiB(status, "Threads"); err == nil {
		t.Error("a field not in kB was read")
	}
}

func TestProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if _, _, err := CPUTicks(os.Getpid()); err != nil {
		t.Error(err)
	}
	if kib, err := VmRSS(os.Getpid()); err != nil || kib <= 0 {
		t.Errorf("VmRSS = %d, %v", kib, err)
	}
	if kib, err := VmHWM(os.Getpid()); err != nil || kib <= 0 {
		t.Errorf("VmHWM = %d, %v", kib, err)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
