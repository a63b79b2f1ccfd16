// Command httpbench measures net/http served over fsmkernel's ListenConn against
// net/http served over net.Listen (issue 15): server CPU per request (total and
// user), requests/s, p50 and p99 latency and peak RSS, plain and over TLS, and
// the memory per idle keep-alive connection.
//
// It builds cmd/httpserver and, for each run, starts a fresh one pinned to one
// CPU with GOMAXPROCS=1 (taskset), with -listener net or -listener fsmkernel
// and -tls for the tls mode. fortio (fortio.org/fortio, installed into
// bench/.tools when missing), pinned to another CPU, first warms the server up
// for -warmup with the same connection count; then httpbench reads the
// server's utime and stime from /proc/PID/stat, runs
//
//	fortio load -c N -qps 0 -t T -json FILE [-k] http[s]://ADDR/
//
// and reads them again, with VmHWM from /proc/PID/status. Requests are
// fortio's calls plus its one warm-up call per connection, all served within
// the measured CPU; the measured run opens its own N keep-alive connections
// (and, with tls, does N handshakes), which is part of the cost. Runs are
// interleaved: for each mode and connection count, every listener once, then
// every listener again, the order reversed from one run to the next. It
// prints each run, then per mode and connection count the medians, and the
// ratios fsmkernel/net of the median CPU per request and of the median
// requests/s against the targets (CPU at most 1.05x, requests/s at
// least 0.95x): PASS or MISS. Beside each ratio of medians is the range of the
// ratios of the runs paired by their number (run r of fsmkernel over run r of
// net), which shows how much the machine's noise moves it.
//
// Idle memory (-idle N): a fresh server gets one warm-up connection, then N
// more from this process, each doing one keep-alive GET (read whole) and then
// left idle; the growth of the server's VmRSS from before the N connections
// to one second after the last, divided by N, is the memory per idle
// connection. It runs for every mode and listener, -runs times, interleaved.
// httpbench raises its own open-file limit to the hard limit, and checks the
// server's (in /proc/PID/limits) before dialing.
//
// Usage, from bench/ (Linux, needs taskset and two CPUs):
//
//	go run ./cmd/httpbench [-t 10s] [-c 50,500] [-modes plain,tls] [-runs 3] [-idle 2000] [-listeners net,fsmkernel]
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fsmkernel/fsmkernel/bench/internal/procstat"
)

// The targets for fsmkernel/net.
const (
	maxCPURatio = 1.05 // CPU per request
	minQPSRatio = 0.95 // requests/s
)

// fortioResolution is fortio's histogram resolution (-r) for a connection
// count, in seconds. fortio's buckets are multiples of it, 1 apart up to 11,
// then wider, at most about 20% of their value up to 1000; its default of 1 ms
// would put every latency here in the first few. A closed loop's latency is
// about conns over the requests/s, so 0.2 µs per connection puts a median near
// 50 (at 100k req/s) and leaves room up to 1000 for the tail.
func fortioResolution(conns int) string {
	return strconv.FormatFloat(float64(conns)*2e-7, 'g', 3, 64)
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "httpbench:", err)
		os.Exit(1)
	}
}

type config struct {
	duration   time.Duration
	warmup     time.Duration
	conns      []int
	modes      []string
	listeners  []string
	runs       int
	body       int
	idle       int
	serverCPU  string
	clientCPU  string
	fortio     string
	benchDir   string
	keepWorkIn bool
}

var (
	allModes     = []string{"plain", "tls"}
	allListeners = []string{"net", "fsmkernel"}
)

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("httpbench", flag.ContinueOnError)
	fs.DurationVar(&cfg.duration, "t", 10*time.Second, "measured load duration of each run")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "load before the measured one in each run (0: none)")
	conns := fs.String("c", "50,500", "keep-alive connections, a comma-separated list for several tables")
	modes := fs.String("modes", "plain,tls", "plain (http) and/or tls (https, self-signed; fortio -k)")
	listeners := fs.String("listeners", "net,fsmkernel", "httpserver -listener values to compare")
	fs.IntVar(&cfg.runs, "runs", 3, "runs per listener, mode and connection count, interleaved")
	fs.IntVar(&cfg.body, "body", 1024, "response body bytes (httpserver -body)")
	fs.IntVar(&cfg.idle, "idle", 0, "idle connections for the memory measurement (0: none)")
	fs.StringVar(&cfg.serverCPU, "server-cpu", "0", "CPU list (taskset -c) for the server")
	fs.StringVar(&cfg.clientCPU, "client-cpu", "1", "CPU list (taskset -c) for fortio")
	fs.StringVar(&cfg.fortio, "fortio", "", "fortio binary (default: bench/.tools/fortio, installed when missing)")
	fs.StringVar(&cfg.benchDir, "dir", ".", "the bench module's directory")
	fs.BoolVar(&cfg.keepWorkIn, "keep", false, "keep the directory of the built server and fortio's JSON")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.conns, err = parseCounts(*conns); err != nil {
		return cfg, fmt.Errorf("-c %q: %w", *conns, err)
	}
	if cfg.modes, err = parseList(*modes, allModes); err != nil {
		return cfg, fmt.Errorf("-modes: %w", err)
	}
	if cfg.listeners, err = parseList(*listeners, allListeners); err != nil {
		return cfg, fmt.Errorf("-listeners: %w", err)
	}
	if cfg.runs < 1 || cfg.body < 1 || cfg.duration <= 0 || cfg.warmup < 0 {
		return cfg, errors.New("-runs, -body and -t must be positive, -warmup not negative")
	}
	if cfg.idle < 0 {
		return cfg, errors.New("-idle must not be negative")
	}
	return cfg, nil
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, errors.New("want positive counts")
		}
		out = append(out, n)
	}
	return out, nil
}

// parseList splits a comma-separated list whose items must be in allowed and
// not repeated.
func parseList(s string, allowed []string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(allowed, f) {
			return nil, fmt.Errorf("unknown %q (have %s)", f, strings.Join(allowed, ","))
		}
		if slices.Contains(out, f) {
			return nil, fmt.Errorf("%q twice", f)
		}
		out = append(out, f)
	}
	return out, nil
}

// result is one run of one listener.
type result struct {
	qps, p50, p99 float64 // requests/s; latencies in microseconds
	requests      int64   // served within the measured CPU
	cpuMicros     float64
	cpuPerReq     float64 // microseconds, utime+stime
	userPerReq    float64 // microseconds, utime alone
	hwmKiB        int64
	errors        int64
}

// key names one table: a mode and a connection count.
type key struct {
	mode  string
	conns int
}

func run(args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if runtime.GOOS != "linux" {
		return errors.New("httpbench reads /proc and uses taskset: Linux only")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("taskset not found (util-linux)")
	}
	dir, err := filepath.Abs(cfg.benchDir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "cmd", "httpserver", "main.go")); err != nil {
		return fmt.Errorf("run from bench/ or pass -dir: %w", err)
	}
	cfg.benchDir = dir
	work, err := os.MkdirTemp("", "httpbench-")
	if err != nil {
		return err
	}
	if cfg.keepWorkIn {
		fmt.Fprintf(os.Stderr, "httpbench: keeping %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	if cfg.fortio == "" {
		if cfg.fortio, err = procstat.EnsureFortio(cfg.benchDir, "httpbench"); err != nil {
			return err
		}
	}
	bin := filepath.Join(work, "httpserver")
	build := exec.Command("go", "build", "-o", bin, "./cmd/httpserver")
	build.Dir = cfg.benchDir
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/httpserver: %w\n%s", err, out)
	}
	nofile, err := raiseNoFile()
	if err != nil {
		return err
	}
	if cfg.idle > 0 && nofile < uint64(cfg.idle)+64 {
		return fmt.Errorf("-idle %d needs %d open files, the hard limit is %d", cfg.idle, cfg.idle+64, nofile)
	}
	tck := procstat.ClockTicks()
	printMachine(stdout, cfg, tck, nofile)

	results := map[key]map[string][]result{}
	for _, mode := range cfg.modes {
		for _, c := range cfg.conns {
			k := key{mode, c}
			results[k] = map[string][]result{}
			for r := 1; r <= cfg.runs; r++ {
				for _, l := range runOrder(cfg.listeners, r) {
					jsonPath := filepath.Join(work, fmt.Sprintf("%s-%s-c%d-r%d.json", l, mode, c, r))
					res, err := runOnce(cfg, bin, l, mode, c, tck, jsonPath)
					if err != nil {
						return fmt.Errorf("%s, %s, %d connections, run %d: %w", l, mode, c, r, err)
					}
					fmt.Fprintf(stdout, "run %d %-5s c=%-4d %-9s %7.0f req/s  p50 %7.1f us  p99 %7.1f us  cpu %6.2f us/req (user %5.2f; %d req, %.0f ms cpu)  hwm %6d KiB  errors %d\n",
						r, mode, c, l, res.qps, res.p50, res.p99, res.cpuPerReq, res.userPerReq, res.requests, res.cpuMicros/1000, res.hwmKiB, res.errors)
					results[k][l] = append(results[k][l], res)
				}
			}
		}
	}
	idle := map[string]map[string][]idleResult{}
	if cfg.idle > 0 {
		for _, mode := range cfg.modes {
			idle[mode] = map[string][]idleResult{}
			for r := 1; r <= cfg.runs; r++ {
				for _, l := range runOrder(cfg.listeners, r) {
					res, err := idleOnce(cfg, bin, l, mode)
					if err != nil {
						return fmt.Errorf("%s, %s, %d idle connections, run %d: %w", l, mode, cfg.idle, r, err)
					}
					fmt.Fprintf(stdout, "run %d %-5s idle=%d %-9s rss %6d KiB before, %6d KiB after: %6.0f B/conn\n",
						r, mode, cfg.idle, l, res.beforeKiB, res.afterKiB, res.perConn)
					idle[mode][l] = append(idle[mode][l], res)
				}
			}
		}
	}
	for _, mode := range cfg.modes {
		for _, c := range cfg.conns {
			printTable(stdout, cfg, key{mode, c}, results[key{mode, c}])
		}
	}
	printRatios(stdout, cfg, results)
	if cfg.idle > 0 {
		printIdle(stdout, cfg, idle)
	}
	return nil
}

// runOrder is the order of the listeners in run r (from 1): as given in odd
// runs, reversed in even ones, so that neither always goes first.
func runOrder(listeners []string, r int) []string {
	if r%2 == 1 {
		return listeners
	}
	rev := slices.Clone(listeners)
	slices.Reverse(rev)
	return rev
}

// raiseNoFile raises this process's soft RLIMIT_NOFILE to its hard limit and
// returns it. Having set it, the process's children (the servers) inherit it:
// Go restores the original soft limit in children only when the program has
// not set one itself.
func raiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit NOFILE: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setrlimit NOFILE to %d: %w", lim.Max, err)
	}
	return lim.Cur, nil
}

// server is a running httpserver.
type server struct {
	cmd  *exec.Cmd
	pid  int
	addr string
}

// startServer starts a fresh httpserver pinned to the server CPU with
// GOMAXPROCS=1 and waits for its address; stop it with stop.
func startServer(cfg config, bin, listener, mode string) (*server, error) {
	args := []string{"-c", cfg.serverCPU, bin, "-listener", listener, "-body", strconv.Itoa(cfg.body), "-addr", "127.0.0.1:0"}
	if mode == "tls" {
		args = append(args, "-tls")
	}
	cmd := exec.Command("taskset", args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(l)
		io.Copy(io.Discard, out)
	}()
	select {
	case s.addr = <-line:
	case <-time.After(10 * time.Second):
		s.stop()
		return nil, fmt.Errorf("httpserver did not print its address in 10s; stderr: %s", stderr)
	}
	if _, _, err := net.SplitHostPort(s.addr); err != nil {
		s.stop()
		return nil, fmt.Errorf("httpserver printed %q, want its address; stderr: %s", s.addr, stderr)
	}
	// taskset execs the server in its own process: the pid must now be
	// httpserver's, not taskset's, or the CPU read would be the wrong one's.
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", s.pid))
	if err != nil || strings.TrimSpace(string(comm)) != "httpserver" {
		s.stop()
		return nil, fmt.Errorf("process %d is %q, not httpserver (%v)", s.pid, bytes.TrimSpace(comm), err)
	}
	return s, nil
}

// stop ends the server with SIGTERM, then SIGKILL after 5 s.
func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// url is the URL fortio loads for a server address and mode.
func url(mode, addr string) string {
	if mode == "tls" {
		return "https://" + addr + "/"
	}
	return "http://" + addr + "/"
}

// fortioArgs is fortio's command line for one load.
func fortioArgs(mode string, conns int, d time.Duration, jsonPath, addr string) []string {
	args := []string{"load", "-quiet", "-qps", "0", "-c", strconv.Itoa(conns), "-t", d.String(),
		"-r", fortioResolution(conns), "-p", "50,99", "-json", jsonPath}
	if mode == "tls" {
		args = append(args, "-k")
	}
	return append(args, url(mode, addr))
}

// load runs fortio pinned to the client CPU.
func load(cfg config, args []string) error {
	cmd := exec.Command("taskset", append([]string{"-c", cfg.clientCPU, cfg.fortio}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("fortio %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// runOnce starts a fresh server, warms it up, measures one load and stops it.
func runOnce(cfg config, bin, listener, mode string, conns int, tck float64, jsonPath string) (result, error) {
	var res result
	srv, err := startServer(cfg, bin, listener, mode)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	if cfg.warmup > 0 {
		if err := load(cfg, fortioArgs(mode, conns, cfg.warmup, jsonPath+".warmup", srv.addr)); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}
	user0, sys0, err := procstat.CPUTicks(srv.pid)
	if err != nil {
		return res, err
	}
	if err := load(cfg, fortioArgs(mode, conns, cfg.duration, jsonPath, srv.addr)); err != nil {
		return res, err
	}
	user1, sys1, err := procstat.CPUTicks(srv.pid)
	if err != nil {
		return res, err
	}
	if res.hwmKiB, err = procstat.VmHWM(srv.pid); err != nil {
		return res, err
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return res, err
	}
	f, err := parseFortio(b)
	if err != nil {
		return res, fmt.Errorf("%s: %w", jsonPath, err)
	}
	if err := res.fromFortio(f); err != nil {
		return res, err
	}
	res.setCPU(user1-user0, sys1-sys0, tck)
	return res, nil
}

// fortioResult is the part of fortio's JSON httpbench reads.
type fortioResult struct {
	ActualQPS         float64
	NumThreads        int // connections, each of which made one warm-up call
	DurationHistogram struct {
		Count       int64 // calls after the warm-up ones
		Percentiles []struct {
			Percentile float64
			Value      float64 // seconds
		}
	}
	RetCodes map[string]int64 // HTTP status (as a string, -1 for a failed call) to calls
}

func parseFortio(b []byte) (fortioResult, error) {
	var f fortioResult
	if err := json.Unmarshal(b, &f); err != nil {
		return f, err
	}
	if f.DurationHistogram.Count == 0 {
		return f, errors.New("fortio made no call")
	}
	return f, nil
}

// fromFortio fills in the load's side of a result: requests/s, latencies,
// requests served and errors (calls whose status was not 200).
func (r *result) fromFortio(f fortioResult) error {
	r.qps = f.ActualQPS
	var p50, p99 bool
	for _, p := range f.DurationHistogram.Percentiles {
		switch p.Percentile {
		case 50:
			r.p50, p50 = p.Value*1e6, true
		case 99:
			r.p99, p99 = p.Value*1e6, true
		}
	}
	if !p50 || !p99 {
		return errors.New("fortio's JSON lacks the 50th or 99th percentile")
	}
	var calls int64
	for code, n := range f.RetCodes {
		calls += n
		if code != "200" {
			r.errors += n
		}
	}
	if calls != f.DurationHistogram.Count {
		return fmt.Errorf("fortio counted %d calls by status, %d by duration", calls, f.DurationHistogram.Count)
	}
	r.requests = f.DurationHistogram.Count + int64(f.NumThreads)
	return nil
}

// setCPU fills in the CPU per request from the server's utime and stime
// deltas, in clock ticks of tck per second.
func (r *result) setCPU(user, sys int64, tck float64) {
	r.cpuMicros = float64(user+sys) / tck * 1e6
	r.cpuPerReq = r.cpuMicros / float64(r.requests)
	r.userPerReq = float64(user) / tck * 1e6 / float64(r.requests)
}

// softNoFile reads the soft limit of open files from a /proc/PID/limits;
// "unlimited" is returned as -1.
func softNoFile(limits string) (int64, error) {
	for _, l := range strings.Split(limits, "\n") {
		if v, ok := strings.CutPrefix(l, "Max open files"); ok {
			f := strings.Fields(v)
			if len(f) < 1 {
				break
			}
			if f[0] == "unlimited" {
				return -1, nil
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, errors.New("no Max open files")
}

// idleResult is one idle-memory run of one listener.
type idleResult struct {
	beforeKiB, afterKiB int64
	perConn             float64 // bytes
}

// idleOnce starts a fresh server and measures its RSS growth per idle
// keep-alive connection over cfg.idle connections, each of which did one GET.
func idleOnce(cfg config, bin, listener, mode string) (idleResult, error) {
	var res idleResult
	srv, err := startServer(cfg, bin, listener, mode)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", srv.pid))
	if err != nil {
		return res, err
	}
	soft, err := softNoFile(string(limits))
	if err != nil {
		return res, fmt.Errorf("/proc/%d/limits: %w", srv.pid, err)
	}
	if need := int64(cfg.idle) + 64; soft >= 0 && soft < need {
		return res, fmt.Errorf("the server may open %d files, %d idle connections need %d", soft, cfg.idle, need)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	get := func(i int) error {
		c, err := dialGet(srv.addr, mode, cfg.body)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
		return nil
	}
	if err := get(0); err != nil { // warm-up: the first connection's setup
		return res, err
	}
	time.Sleep(200 * time.Millisecond)
	if res.beforeKiB, err = procstat.VmRSS(srv.pid); err != nil {
		return res, err
	}
	for i := 1; i <= cfg.idle; i++ {
		if err := get(i); err != nil {
			return res, err
		}
	}
	time.Sleep(time.Second)
	if res.afterKiB, err = procstat.VmRSS(srv.pid); err != nil {
		return res, err
	}
	res.perConn = float64(res.afterKiB-res.beforeKiB) * 1024 / float64(cfg.idle)
	return res, nil
}

// dialGet connects to addr (over TLS in the tls mode, not verifying the
// server's self-signed certificate), makes one keep-alive GET, reads the
// whole response, checks that its body has size bytes, and returns the
// connection open.
func dialGet(addr, mode string, size int) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if mode == "tls" {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		c = tc
	}
	fail := func(err error) (net.Conn, error) {
		c.Close()
		return nil, err
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: httpbench\r\n\r\n"); err != nil {
		return fail(fmt.Errorf("write the request: %w", err))
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fail(fmt.Errorf("read the response: %w", err))
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail(fmt.Errorf("read the body: %w", err))
	}
	if resp.StatusCode != http.StatusOK || len(body) != size || resp.Close {
		return fail(fmt.Errorf("got %s with %d bytes (close %v), want 200 OK with %d, kept alive", resp.Status, len(body), resp.Close, size))
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func printMachine(w io.Writer, cfg config, tck float64, nofile uint64) {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	goVersion := runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		goVersion = strings.TrimSpace(string(out))
	}
	fortio := "unknown"
	if out, err := exec.Command(cfg.fortio, "version").Output(); err == nil {
		fortio = strings.TrimSpace(string(out))
	}
	fmt.Fprintf(w, "httpbench: %s, %d CPUs, Linux %s, %s, fortio %s, CLK_TCK %.0f, open files %d\n",
		cpu, runtime.NumCPU(), kernel, goVersion, fortio, tck, nofile)
	fmt.Fprintf(w, "httpserver on CPU %s (GOMAXPROCS=1), fortio on CPU %s; GET, %d B body, keep-alive; %v warm-up, then %v measured per run; %d runs interleaved; fortio -r %s s per connection\n",
		cfg.serverCPU, cfg.clientCPU, cfg.body, cfg.warmup, cfg.duration, cfg.runs, fortioResolution(1))
}

// medianOf is the median of f over runs.
func medianOf(runs []result, f func(result) float64) float64 {
	var v []float64
	for _, r := range runs {
		v = append(v, f(r))
	}
	return procstat.Median(v)
}

func cpuOf(r result) float64 { return r.cpuPerReq }
func qpsOf(r result) float64 { return r.qps }

func printTable(w io.Writer, cfg config, k key, res map[string][]result) {
	scheme := "http"
	if k.mode == "tls" {
		scheme = "https"
	}
	fmt.Fprintf(w, "\nmedians of %d runs, %s (%s), %d connections, %v each:\n", cfg.runs, k.mode, scheme, k.conns, cfg.duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "listener\treq/s\tp50 us\tp99 us\tCPU us/req\tuser us/req\tpeak RSS KiB\terrors\t")
	for _, l := range cfg.listeners {
		var errs int64
		for _, r := range res[l] {
			errs += r.errors
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t%.2f\t%.2f\t%.0f\t%d\t\n", l,
			medianOf(res[l], qpsOf),
			medianOf(res[l], func(r result) float64 { return r.p50 }),
			medianOf(res[l], func(r result) float64 { return r.p99 }),
			medianOf(res[l], cpuOf),
			medianOf(res[l], func(r result) float64 { return r.userPerReq }),
			medianOf(res[l], func(r result) float64 { return float64(r.hwmKiB) }),
			errs)
	}
	tw.Flush()
}

// ratio compares one metric of fsmkernel's runs with net's: the ratio of the
// medians, and the lowest and highest ratio of runs paired by number.
type ratio struct {
	median, low, high float64
}

func compare(fsm, std []result, f func(result) float64) ratio {
	r := ratio{median: medianOf(fsm, f) / medianOf(std, f)}
	for i := range min(len(fsm), len(std)) {
		q := f(fsm[i]) / f(std[i])
		if i == 0 || q < r.low {
			r.low = q
		}
		if i == 0 || q > r.high {
			r.high = q
		}
	}
	return r
}

func (r ratio) String() string {
	return fmt.Sprintf("%.2fx (%.2f-%.2f)", r.median, r.low, r.high)
}

// verdict is PASS when the ratio of the medians meets the target: at most
// limit when below is true, at least limit otherwise.
func verdict(r ratio, limit float64, below bool) string {
	if below && r.median <= limit || !below && r.median >= limit {
		return "PASS"
	}
	return "MISS"
}

// printRatios prints fsmkernel/net for every mode and connection count, when
// both listeners ran.
func printRatios(w io.Writer, cfg config, results map[key]map[string][]result) {
	if !slices.Contains(cfg.listeners, "net") || !slices.Contains(cfg.listeners, "fsmkernel") {
		return
	}
	fmt.Fprintf(w, "\nfsmkernel/net, ratio of the medians (lowest-highest of the %d runs paired by number); targets: CPU/req <= %.2fx, req/s >= %.2fx:\n",
		cfg.runs, maxCPURatio, minQPSRatio)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "mode\tconns\tCPU/req\t<=%.2fx\treq/s\t>=%.2fx\t\n", maxCPURatio, minQPSRatio)
	for _, mode := range cfg.modes {
		for _, c := range cfg.conns {
			res := results[key{mode, c}]
			cpu := compare(res["fsmkernel"], res["net"], cpuOf)
			qps := compare(res["fsmkernel"], res["net"], qpsOf)
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", mode, c,
				cpu, verdict(cpu, maxCPURatio, true), qps, verdict(qps, minQPSRatio, false))
		}
	}
	tw.Flush()
}

func printIdle(w io.Writer, cfg config, res map[string]map[string][]idleResult) {
	fmt.Fprintf(w, "\nmedians of %d runs, server RSS growth with %d idle keep-alive connections (each did one GET):\n", cfg.runs, cfg.idle)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tlistener\tRSS before KiB\tRSS after KiB\tbytes/conn\tvs net\t")
	for _, mode := range cfg.modes {
		per := func(l string) float64 {
			var v []float64
			for _, r := range res[mode][l] {
				v = append(v, r.perConn)
			}
			return procstat.Median(v)
		}
		for _, l := range cfg.listeners {
			var before, after []float64
			for _, r := range res[mode][l] {
				before = append(before, float64(r.beforeKiB))
				after = append(after, float64(r.afterKiB))
			}
			vs := "-"
			if _, ok := res[mode]["net"]; ok && l != "net" {
				vs = fmt.Sprintf("%.2fx", per(l)/per("net"))
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%s\t\n", mode, l, procstat.Median(before), procstat.Median(after), per(l), vs)
		}
	}
	tw.Flush()
}
