// Command floodrss shows that an fsmkernel server's memory stays bounded when
// it echoes from OnRead while its peers send and read as fast as they can
// (issue 12): with Channel.Write, whose bytes count against the channel's
// watermarks wherever they wait, as much as with Send and SendCopy.
//
// Usage, from bench/ (Linux: it reads /proc/self/status):
//
//	go run ./cmd/floodrss [-mode write|send|sendcopy] [-peers 100] [-t 6s]
//	go run ./cmd/floodrss -modes write,send,sendcopy [-peers 100] [-t 6s]
//
// With -mode (default sendcopy), one process holds both ends. An fsmkernel
// echo server runs on one loop (loop.NewGroup(1, nil)) on 127.0.0.1; its
// OnRead echoes with
//
//	write      c.Write(bytes.Clone(p), nil)
//	send       c.Send(bytes.Clone(p), nil)
//	sendcopy   c.SendCopy(p, nil)
//
// -peers clients dial it with net.Dial. Each has one goroutine writing 16 KiB
// chunks and one reading into a fixed 64 KiB buffer, both as fast as they can,
// for -t. Every 100 ms the command samples the process's VmRSS
// (/proc/self/status) and runtime.MemStats.HeapInuse. Then it closes the
// clients, stops the server with Group.Shutdown (10 s timeout) and prints
//
//	mode write peers 100 6s: peak RSS 41.2 MiB (VmHWM 41.5 MiB), peak heap 12.3 MiB, echoed 5.1 GiB
//
// where echoed counts the bytes the clients read back, and VmHWM is read after
// the shutdown. A failed shutdown is appended to the line and makes the exit
// status 1.
//
// With -modes, each mode runs in a fresh subprocess (the command re-executes
// itself), one after the other, so that one mode's memory does not stay in the
// next one's RSS; after the lines it prints each mode's peak RSS as a ratio of
// sendcopy's, when sendcopy is among the modes.
//
// The exit status is 2 for a usage error, 1 when a run fails.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
)

const (
	chunkSize       = 16 << 10 // what each client writes at a time
	readBufSize     = 64 << 10 // each client's read buffer
	sampleEvery     = 100 * time.Millisecond
	shutdownTimeout = 10 * time.Second
)

var allModes = []string{"write", "send", "sendcopy"}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	mode     string
	modes    []string
	peers    int
	duration time.Duration
	child    bool
}

// errUsage marks an error in the command line.
var errUsage = errors.New("usage")

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("floodrss", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.mode, "mode", "sendcopy", "how OnRead echoes, in this process: write, send or sendcopy")
	modes := fs.String("modes", "", "modes to run one after the other, each in a fresh subprocess (comma-separated)")
	fs.IntVar(&cfg.peers, "peers", 100, "client connections")
	fs.DurationVar(&cfg.duration, "t", 6*time.Second, "how long the clients flood the server")
	// -child is set by -modes on the subprocesses it starts: run -mode and
	// print the result as JSON for the parent.
	fs.BoolVar(&cfg.child, "child", false, "")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: floodrss [-mode write|send|sendcopy | -modes write,send,sendcopy] [-peers 100] [-t 6s]")
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name != "child" {
				fmt.Fprintf(stderr, "  -%s (default %q)\n    \t%s\n", f.Name, f.DefValue, f.Usage)
			}
		})
	}
	if err := fs.Parse(args); err != nil {
		return cfg, errUsage
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if !slices.Contains(allModes, cfg.mode) {
		return cfg, fmt.Errorf("%w: -mode %q: want one of %v", errUsage, cfg.mode, allModes)
	}
	if *modes != "" {
		if cfg.child {
			return cfg, fmt.Errorf("%w: -child runs one -mode", errUsage)
		}
		for _, m := range strings.Split(*modes, ",") {
			m = strings.TrimSpace(m)
			if !slices.Contains(allModes, m) {
				return cfg, fmt.Errorf("%w: -modes: unknown mode %q (have %v)", errUsage, m, allModes)
			}
			cfg.modes = append(cfg.modes, m)
		}
	}
	if cfg.peers < 1 || cfg.duration <= 0 {
		return cfg, fmt.Errorf("%w: -peers and -t must be positive", errUsage)
	}
	return cfg, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if err != errUsage { // flag has already said what was wrong
			fmt.Fprintln(stderr, "floodrss:", err)
		}
		return 2
	}
	if cfg.modes != nil {
		return runModes(cfg, stdout, stderr)
	}
	res, err := flood(cfg.mode, cfg.peers, cfg.duration)
	if err != nil {
		fmt.Fprintln(stderr, "floodrss:", err)
		return 1
	}
	if cfg.child {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			fmt.Fprintln(stderr, "floodrss:", err)
			return 1
		}
	} else {
		fmt.Fprintln(stdout, res)
	}
	if res.ShutdownErr != "" {
		return 1
	}
	return 0
}

// runModes runs each mode in a subprocess and prints its line, then the ratios.
func runModes(cfg config, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "floodrss:", err)
		return 1
	}
	status := 0
	rss := map[string]int64{}
	for _, m := range cfg.modes {
		cmd := exec.Command(exe, "-child", "-mode", m,
			"-peers", strconv.Itoa(cfg.peers), "-t", cfg.duration.String())
		cmd.Stderr = stderr
		out, runErr := cmd.Output()
		var res result
		if err := json.Unmarshal(out, &res); err != nil {
			fmt.Fprintf(stderr, "floodrss: mode %s: %v (output %q, %v)\n", m, runErr, out, err)
			status = 1
			continue
		}
		fmt.Fprintln(stdout, res)
		if runErr != nil {
			status = 1
		}
		rss[m] = res.PeakRSS
	}
	if base := rss["sendcopy"]; base > 0 && len(rss) > 1 {
		var parts []string
		for _, m := range cfg.modes {
			if r, ok := rss[m]; ok && m != "sendcopy" {
				parts = append(parts, fmt.Sprintf("%s %.2fx", m, float64(r)/float64(base)))
			}
		}
		fmt.Fprintf(stdout, "peak RSS against sendcopy: %s\n", strings.Join(parts, ", "))
	}
	return status
}

// result is one mode's run. Sizes are in bytes.
type result struct {
	Mode        string
	Peers       int
	Duration    time.Duration
	PeakRSS     int64 // largest VmRSS sampled during the flood
	HWM         int64 // VmHWM after the shutdown
	PeakHeap    int64 // largest HeapInuse sampled during the flood
	Echoed      int64 // bytes the clients read back
	ShutdownErr string
}

func (r result) String() string {
	s := fmt.Sprintf("mode %s peers %d %v: peak RSS %s (VmHWM %s), peak heap %s, echoed %s",
		r.Mode, r.Peers, r.Duration, size(r.PeakRSS), size(r.HWM), size(r.PeakHeap), size(r.Echoed))
	if r.ShutdownErr != "" {
		s += "; shutdown: " + r.ShutdownErr
	}
	return s
}

// size formats n bytes with one decimal in the largest binary unit that keeps
// it at least 1.
func size(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// echoHandler echoes what it reads, the way its mode says.
type echoHandler struct {
	loop.NopHandler
	mode string
}

func (h echoHandler) OnRead(c *loop.Channel, p []byte) {
	switch h.mode {
	case "write":
		c.Write(bytes.Clone(p), nil)
	case "send":
		c.Send(bytes.Clone(p), nil)
	case "sendcopy":
		c.SendCopy(p, nil)
	}
}

// flood runs one mode in this process: server, clients, samples, shutdown.
func flood(mode string, peers int, d time.Duration) (result, error) {
	res := result{Mode: mode, Peers: peers, Duration: d}
	g := loop.NewGroup(1, nil)
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
		return echoHandler{mode: mode}, nil
	}, nil)
	if err != nil {
		g.Close()
		return res, fmt.Errorf("serve: %w", err)
	}
	addr := ln.Addr().String()

	var echoed atomic.Int64
	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, peers)
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}
	for range peers {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			closeAll()
			g.Close()
			return res, err
		}
		conns = append(conns, c)
		wg.Add(2)
		go func() { // writes until the connection is closed
			defer wg.Done()
			chunk := make([]byte, chunkSize)
			for {
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
		go func() { // reads until the connection is closed
			defer wg.Done()
			buf := make([]byte, readBufSize)
			for {
				n, err := c.Read(buf)
				echoed.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	}

	var sampleErr error
	tick := time.NewTicker(sampleEvery)
	end := time.After(d)
sampling:
	for {
		select {
		case <-tick.C:
			rss, err := procStatus("VmRSS")
			if err != nil {
				sampleErr = err
				break sampling
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			res.PeakRSS = max(res.PeakRSS, rss)
			res.PeakHeap = max(res.PeakHeap, int64(ms.HeapInuse))
		case <-end:
			break sampling
		}
	}
	tick.Stop()
	closeAll()
	res.Echoed = echoed.Load()

	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		res.ShutdownErr = err.Error()
	}
	if sampleErr != nil {
		return res, sampleErr
	}
	res.HWM, err = procStatus("VmHWM")
	return res, err
}

// procStatus returns a size field of /proc/self/status ("VmRSS:  1234 kB") in
// bytes.
func procStatus(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		kb, ok := strings.CutSuffix(strings.TrimSpace(rest), " kB")
		n, err := strconv.ParseInt(strings.TrimSpace(kb), 10, 64)
		if !ok || err != nil {
			return 0, fmt.Errorf("/proc/self/status: bad %s line %q", field, line)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("/proc/self/status: no %s", field)
}
