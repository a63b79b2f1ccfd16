package main

import (
	"bytes"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// fortioJSON is an excerpt of what fortio load -json writes for an HTTP run.
const fortioJSON = `{
  "RunType": "HTTP",
  "ActualQPS": 46736.168428703706,
  "NumThreads": 4,
  "DurationHistogram": {
    "Count": 46740,
    "Min": 0.00003,
    "Percentiles": [
      {"Percentile": 50, "Value": 0.0005081248748981254},
      {"Percentile": 99, "Value": 0.0009925045988590057}
    ]
  },
  "RetCodes": {"200": 46738, "-1": 2},
  "Sockets": [1, 1, 1, 1],
  "SocketCount": 4
}`

func TestFromFortio(t *testing.T) {
	f, err := parseFortio([]byte(fortioJSON))
	if err != nil {
		t.Fatal(err)
	}
	var r result
	if err := r.fromFortio(f); err != nil {
		t.Fatal(err)
	}
	if r.qps != 46736.168428703706 {
		t.Errorf("qps = %v", r.qps)
	}
	if r.requests != 46744 { // 46740 calls and one warm-up call on each of 4 connections
		t.Errorf("requests = %d, want 46744", r.requests)
	}
	if r.errors != 2 {
		t.Errorf("errors = %d, want 2 (the calls whose status is not 200)", r.errors)
	}
	if math.Abs(r.p50-508.1248748981254) > 1e-9 || math.Abs(r.p99-992.5045988590057) > 1e-9 {
		t.Errorf("p50, p99 = %v, %v us", r.p50, r.p99)
	}
}

func TestFromFortioRejects(t *testing.T) {
	for name, json := range map[string]string{
		"not JSON":        `{"ActualQPS": `,
		"no call":         `{"DurationHistogram": {"Count": 0}}`,
		"no p99":          strings.Replace(fortioJSON, `"Percentile": 99`, `"Percentile": 90`, 1),
		"counts disagree": strings.Replace(fortioJSON, `"200": 46738`, `"200": 46737`, 1),
	} {
		f, err := parseFortio([]byte(json))
		if err == nil {
			var r result
			err = r.fromFortio(f)
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSetCPU(t *testing.T) {
	r := result{requests: 200000}
	r.setCPU(150, 50, 100) // 1.5 s user, 0.5 s system
	if r.cpuMicros != 2e6 || r.cpuPerReq != 10 || r.userPerReq != 7.5 {
		t.Errorf("cpu %v us, %v us/req, user %v us/req; want 2e6, 10, 7.5", r.cpuMicros, r.cpuPerReq, r.userPerReq)
	}
}

func TestSoftNoFile(t *testing.T) {
	limits := `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`
	if n, err := softNoFile(limits); err != nil || n != 1024 {
		t.Errorf("softNoFile = %d, %v; want 1024", n, err)
	}
	if n, err := softNoFile(strings.Replace(limits, "1024  ", "unlimited", 1)); err != nil || n != -1 {
		t.Errorf("softNoFile(unlimited) = %d, %v; want -1", n, err)
	}
	if _, err := softNoFile("Limit Soft Limit\n"); err == nil {
		t.Error("limits without open files accepted")
	}
}

func TestProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := softNoFile(string(b)); err != nil || n == 0 {
		t.Errorf("softNoFile(/proc/self/limits) = %d, %v", n, err)
	}
}

func runs(cpu ...float64) []result {
	var rs []result
	for _, c := range cpu {
		rs = append(rs, result{cpuPerReq: c, qps: 1e6 / c})
	}
	return rs
}

func TestCompare(t *testing.T) {
	fsm, std := runs(14, 15, 13), runs(10, 10.5, 9.5)
	r := compare(fsm, std, cpuOf)
	if math.Abs(r.median-1.4) > 1e-12 {
		t.Errorf("ratio of the medians = %v, want 14/10", r.median)
	}
	if math.Abs(r.low-13/9.5) > 1e-12 || math.Abs(r.high-15/10.5) > 1e-12 {
		t.Errorf("paired ratios %v-%v, want 13/9.5-15/10.5", r.low, r.high)
	}
	if got := r.String(); got != "1.40x (1.37-1.43)" {
		t.Errorf("String = %q", got)
	}
	q := compare(fsm, std, qpsOf)
	if math.Abs(q.median-10.0/14) > 1e-12 {
		t.Errorf("req/s ratio = %v, want 10/14", q.median)
	}
}

func TestVerdict(t *testing.T) {
	for _, c := range []struct {
		r     float64
		limit float64
		below bool
		want  string
	}{
		{1.00, maxCPURatio, true, "PASS"},
		{1.05, maxCPURatio, true, "PASS"},
		{1.051, maxCPURatio, true, "MISS"},
		{1.40, maxCPURatio, true, "MISS"},
		{1.10, minQPSRatio, false, "PASS"},
		{0.95, minQPSRatio, false, "PASS"},
		{0.949, minQPSRatio, false, "MISS"},
	} {
		if got := verdict(ratio{median: c.r}, c.limit, c.below); got != c.want {
			t.Errorf("verdict(%v, %v, below %v) = %s, want %s", c.r, c.limit, c.below, got, c.want)
		}
	}
}

func TestPrintRatios(t *testing.T) {
	cfg := config{runs: 3, modes: []string{"plain"}, conns: []int{50}, listeners: allListeners}
	var out bytes.Buffer
	// CPU 1.02x passes; req/s follows it (1/1.02 = 0.98x) and passes too.
	printRatios(&out, cfg, map[key]map[string][]result{{"plain", 50}: {"net": runs(10, 10, 10), "fsmkernel": runs(10.2, 10.2, 10.2)}})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if got := strings.Join(strings.Fields(lines[len(lines)-1]), " "); got != "plain 50 1.02x (1.02-1.02) PASS 0.98x (0.98-0.98) PASS" {
		t.Errorf("printRatios:\n%s", out.String())
	}
	out.Reset()
	printRatios(&out, cfg, map[key]map[string][]result{{"plain", 50}: {"net": runs(10, 10, 10), "fsmkernel": runs(14, 14, 14)}})
	if strings.Contains(out.String(), "PASS") || strings.Count(out.String(), "MISS") != 2 {
		t.Errorf("printRatios:\n%s", out.String())
	}
	out.Reset()
	cfg.listeners = []string{"net"}
	printRatios(&out, cfg, nil)
	if out.Len() != 0 {
		t.Errorf("printRatios without fsmkernel printed %q", out.String())
	}
}

func TestRunOrder(t *testing.T) {
	l := []string{"net", "fsmkernel"}
	if got := runOrder(l, 1); !slices.Equal(got, l) {
		t.Errorf("run 1: %v", got)
	}
	if got := runOrder(l, 2); !slices.Equal(got, []string{"fsmkernel", "net"}) {
		t.Errorf("run 2: %v", got)
	}
	if !slices.Equal(l, []string{"net", "fsmkernel"}) {
		t.Errorf("runOrder changed its argument: %v", l)
	}
}

func TestFortioArgs(t *testing.T) {
	plain := strings.Join(fortioArgs("plain", 50, 10*time.Second, "/tmp/x.json", "127.0.0.1:80"), " ")
	if want := "load -quiet -qps 0 -c 50 -t 10s -r 1e-05 -p 50,99 -json /tmp/x.json http://127.0.0.1:80/"; plain != want {
		t.Errorf("plain:\n%s\nwant\n%s", plain, want)
	}
	tls := strings.Join(fortioArgs("tls", 500, time.Second, "/tmp/x.json", "127.0.0.1:80"), " ")
	if want := "load -quiet -qps 0 -c 500 -t 1s -r 0.0001 -p 50,99 -json /tmp/x.json -k https://127.0.0.1:80/"; tls != want {
		t.Errorf("tls:\n%s\nwant\n%s", tls, want)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.conns, []int{50, 500}) || !slices.Equal(cfg.modes, []string{"plain", "tls"}) ||
		!slices.Equal(cfg.listeners, []string{"net", "fsmkernel"}) || cfg.runs != 3 || cfg.duration != 10*time.Second ||
		cfg.warmup != time.Second || cfg.idle != 0 {
		t.Errorf("defaults: %+v", cfg)
	}
	if cfg, err = parseFlags([]string{"-c", "8", "-modes", "tls", "-idle", "2000", "-t", "5s"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.conns, []int{8}) || !slices.Equal(cfg.modes, []string{"tls"}) || cfg.idle != 2000 || cfg.duration != 5*time.Second {
		t.Errorf("parsed: %+v", cfg)
	}
	for _, bad := range [][]string{
		{"-modes", "h2"}, {"-modes", "plain,plain"}, {"-listeners", "gnet"}, {"-c", "0"}, {"-c", "50,x"},
		{"-runs", "0"}, {"-idle", "-1"}, {"-warmup", "-1s"}, {"extra"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

// TestDialGet runs the idle measurement's client against local net/http
// servers, plain and TLS.
func TestDialGet(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })
	for mode, srv := range map[string]*httptest.Server{"plain": httptest.NewServer(h), "tls": httptest.NewTLSServer(h)} {
		defer srv.Close()
		addr := srv.Listener.Addr().String()
		c, err := dialGet(addr, mode, len(body))
		if err != nil {
			t.Errorf("%s: %v", mode, err)
		} else {
			c.Close()
		}
		if _, err := dialGet(addr, mode, len(body)+1); err == nil {
			t.Errorf("%s: a body of the wrong size was accepted", mode)
		}
	}
}
