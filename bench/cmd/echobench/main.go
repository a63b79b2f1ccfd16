// Command echobench measures the echo servers side by side (issue 7): server CPU
// per echo, requests/s, p50 and p99 latency and peak RSS, for fsmkernel's loop,
// Go's net (a goroutine per connection), gnet v2 (one event loop) and a plain C
// epoll loop as the floor.
//
// It builds the servers (go build; gcc -O2 for bench/c/echo.c), and for each run
// starts a fresh server pinned to one CPU with GOMAXPROCS=1 (taskset) and drives
// it with fortio's TCP ping-pong load (fortio.org/fortio, installed into
// bench/.tools when missing) pinned to another CPU. Runs are interleaved: every
// server once, then every server again. Server CPU is utime+stime from
// /proc/PID/stat, read before and after the load; echoes are the bytes fortio
// received divided by the payload size; peak RSS is VmHWM from
// /proc/PID/status at the end of the run. It prints each run, then per
// connection count the medians and the ratios of CPU per echo against gnet and
// against C; user CPU (utime alone) is shown beside the total, since it is the
// part a library controls.
//
// Idle memory (-idle N): a fresh server gets one warm-up connection, then N
// more, each echoing one payload (so that the server has accepted it and set up
// whatever a connection needs) and then left idle; the growth of VmRSS from
// before the N connections to one second after the last, divided by N, is the
// memory per idle connection.
//
// Usage, from bench/ (Linux, needs taskset, gcc and two CPUs):
//
//	go run ./cmd/echobench [-t 5s] [-c 50[,500]] [-runs 3] [-idle 10000] [-servers fsmkernel,net,gnet,c]
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
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

	"github.com/fsmkernel/fsmkernel/bench/echo"
	"github.com/fsmkernel/fsmkernel/bench/internal/procstat"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "echobench:", err)
		os.Exit(1)
	}
}

type config struct {
	duration   time.Duration
	conns      []int
	runs       int
	payload    int
	servers    []string
	serverCPU  string
	clientCPU  string
	fortio     string
	benchDir   string
	keepBinDir bool
	idle       int
}

func parseFlags(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("echobench", flag.ContinueOnError)
	fs.DurationVar(&cfg.duration, "t", 5*time.Second, "load duration of each run")
	conns := fs.String("c", "50", "connections, a comma-separated list for several tables")
	fs.IntVar(&cfg.runs, "runs", 3, "runs per server and connection count, interleaved")
	fs.IntVar(&cfg.payload, "payload", 1024, "bytes per echo")
	servers := fs.String("servers", "fsmkernel,net,gnet,c", "servers to compare, in run order")
	fs.StringVar(&cfg.serverCPU, "server-cpu", "0", "CPU list (taskset -c) for the server")
	fs.StringVar(&cfg.clientCPU, "client-cpu", "1", "CPU list (taskset -c) for fortio")
	fs.StringVar(&cfg.fortio, "fortio", "", "fortio binary (default: bench/.tools/fortio, installed when missing)")
	fs.StringVar(&cfg.benchDir, "dir", ".", "the bench module's directory")
	fs.BoolVar(&cfg.keepBinDir, "keep", false, "keep the directory of built servers and fortio's JSON")
	fs.IntVar(&cfg.idle, "idle", 0, "idle connections for the memory measurement (0: none)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("-c %q: want positive connection counts", *conns)
		}
		cfg.conns = append(cfg.conns, n)
	}
	for _, s := range strings.Split(*servers, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allServers, s) {
			return cfg, fmt.Errorf("-servers: unknown server %q (have %v)", s, allServers)
		}
		cfg.servers = append(cfg.servers, s)
	}
	if cfg.runs < 1 || cfg.payload < 1 || cfg.duration <= 0 {
		return cfg, errors.New("-runs, -payload and -t must be positive")
	}
	if cfg.idle < 0 {
		return cfg, errors.New("-idle must not be negative")
	}
	return cfg, nil
}

var allServers = []string{"fsmkernel", "net", "gnet", "c"}

// result is one run of one server.
type result struct {
	qps, p50, p99 float64 // requests/s; latencies in microseconds
	echoes        int64
	cpuMicros     float64
	cpuPerEcho    float64 // microseconds, utime+stime
	userPerEcho   float64 // microseconds, utime alone
	hwmKiB        int64
	errors        int64
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
		return errors.New("echobench reads /proc and uses taskset: Linux only")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("taskset not found (util-linux)")
	}
	dir, err := filepath.Abs(cfg.benchDir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "c", "echo.c")); err != nil {
		return fmt.Errorf("run from bench/ or pass -dir: %w", err)
	}
	cfg.benchDir = dir
	work, err := os.MkdirTemp("", "echobench-")
	if err != nil {
		return err
	}
	if cfg.keepBinDir {
		fmt.Fprintf(os.Stderr, "echobench: keeping %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	if cfg.fortio == "" {
		if cfg.fortio, err = procstat.EnsureFortio(cfg.benchDir, "echobench"); err != nil {
			return err
		}
	}
	bins, err := build(cfg, work)
	if err != nil {
		return err
	}
	tck := procstat.ClockTicks()
	printMachine(stdout, cfg, tck)

	// results[conns][server] holds the runs.
	results := map[int]map[string][]result{}
	for _, c := range cfg.conns {
		results[c] = map[string][]result{}
		for r := 1; r <= cfg.runs; r++ {
			for _, s := range cfg.servers {
				res, err := runOnce(cfg, bins[s], c, tck, filepath.Join(work, fmt.Sprintf("%s-c%d-r%d.json", s, c, r)))
				if err != nil {
					return fmt.Errorf("%s, %d connections, run %d: %w", s, c, r, err)
				}
				fmt.Fprintf(stdout, "run %d c=%-4d %-9s %9.0f req/s  p50 %7.1f us  p99 %7.1f us  cpu %6.3f us/echo (user %5.3f; %d echoes, %.0f ms cpu)  hwm %6d KiB  errors %d\n",
					r, c, s, res.qps, res.p50, res.p99, res.cpuPerEcho, res.userPerEcho, res.echoes, res.cpuMicros/1000, res.hwmKiB, res.errors)
				results[c][s] = append(results[c][s], res)
			}
		}
	}
	idle := map[string][]idleResult{}
	if cfg.idle > 0 {
		for r := 1; r <= cfg.runs; r++ {
			for _, s := range cfg.servers {
				res, err := idleOnce(cfg, bins[s])
				if err != nil {
					return fmt.Errorf("%s, %d idle connections, run %d: %w", s, cfg.idle, r, err)
				}
				fmt.Fprintf(stdout, "run %d idle=%d %-9s rss %6d KiB before, %6d KiB after: %6.0f B/conn\n",
					r, cfg.idle, s, res.beforeKiB, res.afterKiB, res.perConn)
				idle[s] = append(idle[s], res)
			}
		}
	}
	for _, c := range cfg.conns {
		printTable(stdout, cfg, c, results[c])
	}
	if cfg.idle > 0 {
		printIdle(stdout, cfg, idle)
	}
	return nil
}

// build compiles the servers into work and returns their paths by name.
func build(cfg config, work string) (map[string]string, error) {
	bins := map[string]string{}
	for _, s := range cfg.servers {
		bin := filepath.Join(work, "echo-"+s)
		var cmd *exec.Cmd
		if s == "c" {
			cmd = exec.Command("gcc", "-O2", "-o", bin, filepath.Join("c", "echo.c"))
		} else {
			cmd = exec.Command("go", "build", "-o", bin, "./cmd/echo-"+s)
		}
		cmd.Dir = cfg.benchDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
		}
		bins[s] = bin
	}
	return bins, nil
}

// startServer starts a fresh server pinned to the server CPU with GOMAXPROCS=1
// and returns it with its pid and address; stop it with stop.
func startServer(cfg config, bin string) (srv *exec.Cmd, pid int, addr string, err error) {
	srv = exec.Command("taskset", "-c", cfg.serverCPU, bin, "-addr", "127.0.0.1:0")
	srv.Env = append(os.Environ(), "GOMAXPROCS=1")
	srvErr := &bytes.Buffer{}
	srv.Stderr = srvErr
	out, err := srv.StdoutPipe()
	if err != nil {
		return nil, 0, "", err
	}
	if err := srv.Start(); err != nil {
		return nil, 0, "", err
	}
	fail := func(err error) (*exec.Cmd, int, string, error) {
		stop(srv)
		return nil, 0, "", err
	}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(l)
		io.Copy(io.Discard, out)
	}()
	var announced string
	select {
	case announced = <-line:
	case <-time.After(10 * time.Second):
		return fail(fmt.Errorf("server did not announce its address in 10s; stderr: %s", srvErr.String()))
	}
	pid, addr, err = echo.ParseAnnounce(announced)
	if err != nil {
		return fail(fmt.Errorf("%w; stderr: %s", err, srvErr.String()))
	}
	if pid != srv.Process.Pid {
		return fail(fmt.Errorf("server announced pid %d, taskset started %d", pid, srv.Process.Pid))
	}
	return srv, pid, addr, nil
}

// runOnce starts a fresh server, loads it with fortio and stops it.
func runOnce(cfg config, bin string, conns int, tck float64, jsonPath string) (result, error) {
	var res result
	srv, pid, addr, err := startServer(cfg, bin)
	if err != nil {
		return res, err
	}
	defer stop(srv)

	user0, sys0, err := procstat.CPUTicks(pid)
	if err != nil {
		return res, err
	}
	load := exec.Command("taskset", "-c", cfg.clientCPU, cfg.fortio, "load", "-quiet",
		"-qps", "0", "-c", strconv.Itoa(conns), "-t", cfg.duration.String(),
		"-payload-size", strconv.Itoa(cfg.payload), "-p", "50,99",
		"-json", jsonPath, "tcp://"+addr)
	if loadOut, err := load.CombinedOutput(); err != nil {
		return res, fmt.Errorf("fortio: %w\n%s", err, loadOut)
	}
	user1, sys1, err := procstat.CPUTicks(pid)
	if err != nil {
		return res, err
	}
	if res.hwmKiB, err = procstat.VmHWM(pid); err != nil {
		return res, err
	}
	f, err := readFortio(jsonPath)
	if err != nil {
		return res, err
	}
	res.qps = f.ActualQPS
	for _, p := range f.DurationHistogram.Percentiles {
		switch p.Percentile {
		case 50:
			res.p50 = p.Value * 1e6
		case 99:
			res.p99 = p.Value * 1e6
		}
	}
	for code, n := range f.RetCodes {
		if code != "OK" {
			res.errors += n
		}
	}
	res.errors += f.ErrorsDurationHistogram.Count
	res.echoes = f.BytesReceived / int64(cfg.payload)
	if res.echoes == 0 {
		return res, errors.New("fortio received no echo")
	}
	res.cpuMicros = float64(user1-user0+sys1-sys0) / tck * 1e6
	res.cpuPerEcho = res.cpuMicros / float64(res.echoes)
	res.userPerEcho = float64(user1-user0) / tck * 1e6 / float64(res.echoes)
	return res, nil
}

// stop ends the server with SIGTERM, then SIGKILL after 5 s.
func stop(srv *exec.Cmd) {
	srv.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		srv.Process.Kill()
		<-done
	}
}

// fortioResult is the part of fortio's JSON echobench reads.
type fortioResult struct {
	ActualQPS         float64
	DurationHistogram struct {
		Count       int64
		Percentiles []struct {
			Percentile float64
			Value      float64 // seconds
		}
	}
	ErrorsDurationHistogram struct{ Count int64 }
	RetCodes                map[string]int64
	SocketCount             int
	BytesReceived           int64
}

func readFortio(path string) (fortioResult, error) {
	var f fortioResult
	b, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// idleResult is one idle-memory run of one server.
type idleResult struct {
	beforeKiB, afterKiB int64
	perConn             float64 // bytes
}

// idleOnce starts a fresh server and measures its RSS growth per idle
// connection over cfg.idle connections, each of which echoed one payload.
func idleOnce(cfg config, bin string) (idleResult, error) {
	var res idleResult
	srv, pid, addr, err := startServer(cfg, bin)
	if err != nil {
		return res, err
	}
	defer stop(srv)
	msg := make([]byte, cfg.payload)
	for i := range msg {
		msg[i] = byte(i)
	}
	got := make([]byte, len(msg))
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dialEcho := func(i int) error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(msg); err != nil {
			return fmt.Errorf("connection %d: write: %w", i, err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			return fmt.Errorf("connection %d: read the echo: %w", i, err)
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("connection %d: the echo differs from the message", i)
		}
		return nil
	}
	if err := dialEcho(0); err != nil { // warm-up: the first connection's setup
		return res, err
	}
	time.Sleep(200 * time.Millisecond)
	if res.beforeKiB, err = procstat.VmRSS(pid); err != nil {
		return res, err
	}
	for i := 1; i <= cfg.idle; i++ {
		if err := dialEcho(i); err != nil {
			return res, err
		}
	}
	time.Sleep(time.Second)
	if res.afterKiB, err = procstat.VmRSS(pid); err != nil {
		return res, err
	}
	res.perConn = float64(res.afterKiB-res.beforeKiB) * 1024 / float64(cfg.idle)
	return res, nil
}

func printIdle(w io.Writer, cfg config, res map[string][]idleResult) {
	fmt.Fprintf(w, "\nmedians of %d runs, RSS growth with %d idle connections (each echoed %d B once):\n", cfg.runs, cfg.idle, cfg.payload)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tRSS before KiB\tRSS after KiB\tbytes/conn\t")
	for _, s := range cfg.servers {
		var before, after, per []float64
		for _, r := range res[s] {
			before = append(before, float64(r.beforeKiB))
			after = append(after, float64(r.afterKiB))
			per = append(per, r.perConn)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t\n", s, procstat.Median(before), procstat.Median(after), procstat.Median(per))
	}
	tw.Flush()
}

func printMachine(w io.Writer, cfg config, tck float64) {
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
	gcc := "unknown"
	if out, err := exec.Command("gcc", "-dumpfullversion").Output(); err == nil {
		gcc = strings.TrimSpace(string(out))
	}
	goVersion := runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		goVersion = strings.TrimSpace(string(out))
	}
	fortio := "unknown"
	if out, err := exec.Command(cfg.fortio, "version").Output(); err == nil {
		fortio = strings.TrimSpace(string(out))
	}
	fmt.Fprintf(w, "echobench: %s, %d CPUs, Linux %s, %s, gcc %s, fortio %s, CLK_TCK %.0f\n",
		cpu, runtime.NumCPU(), kernel, goVersion, gcc, fortio, tck)
	fmt.Fprintf(w, "servers on CPU %s (GOMAXPROCS=1), fortio tcp ping-pong on CPU %s; %d B payload, %v per run, %d runs interleaved\n",
		cfg.serverCPU, cfg.clientCPU, cfg.payload, cfg.duration, cfg.runs)
}

func printTable(w io.Writer, cfg config, conns int, res map[string][]result) {
	med := func(s string, f func(result) float64) float64 {
		var v []float64
		for _, r := range res[s] {
			v = append(v, f(r))
		}
		return procstat.Median(v)
	}
	cpu := func(r result) float64 { return r.cpuPerEcho }
	ratio := func(s, against string) string {
		if _, ok := res[against]; !ok {
			return "-"
		}
		return fmt.Sprintf("%.2fx", med(s, cpu)/med(against, cpu))
	}
	fmt.Fprintf(w, "\nmedians of %d runs, %d connections, %d B ping-pong, %v each:\n", cfg.runs, conns, cfg.payload, cfg.duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\treq/s\tp50 us\tp99 us\tCPU us/echo\tuser us/echo\tpeak RSS KiB\tvs gnet\tvs C\terrors\t")
	for _, s := range cfg.servers {
		var errs int64
		for _, r := range res[s] {
			errs += r.errors
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t%.3f\t%.3f\t%.0f\t%s\t%s\t%d\t\n", s,
			med(s, func(r result) float64 { return r.qps }),
			med(s, func(r result) float64 { return r.p50 }),
			med(s, func(r result) float64 { return r.p99 }),
			med(s, cpu),
			med(s, func(r result) float64 { return r.userPerEcho }),
			med(s, func(r result) float64 { return float64(r.hwmKiB) }),
			ratio(s, "gnet"), ratio(s, "c"), errs)
	}
	tw.Flush()
}
