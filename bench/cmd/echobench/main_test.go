package main

import (
	"os"
	"runtime"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if _, _, err := cpuTicks(os.Getpid()); err != nil {
		t.Error(err)
	}
	if kib, err := vmRSS(os.Getpid()); err != nil || kib <= 0 {
		t.Errorf("vmRSS = %d, %v", kib, err)
	}
	if kib, err := vmHWM(os.Getpid()); err != nil || kib <= 0 {
		t.Errorf("vmHWM = %d, %v", kib, err)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-c", "50,500", "-servers", "c,gnet"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.conns) != 2 || cfg.conns[1] != 500 || len(cfg.servers) != 2 || cfg.runs != 3 {
		t.Errorf("parseFlags = %+v", cfg)
	}
	if _, err := parseFlags([]string{"-servers", "nginx"}); err == nil {
		t.Error("an unknown server was accepted")
	}
}
