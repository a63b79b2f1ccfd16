// Command echo is an echo server and client on fsmkernel's event loops, over
// TCP, Unix stream sockets or AF_VSOCK.
//
// The server uses the loop's own API: a Group serves the address and a Handler
// writes back every buffer OnRead delivers; the channel's high watermark pauses
// reading while a client does not read its echo. The client uses the net.Conn
// adapter (Group.DialConn): it writes random bytes, reads the echo back and
// checks it byte for byte.
//
// Usage:
//
//	echo [-network tcp|unix|vsock] [-mode server|client|both] [-addr address] [-size bytes] [-conns n]
//
// Modes:
//
//	server  serve -addr until interrupted (SIGINT, SIGTERM), then shut down gracefully.
//	client  connect to -addr, send -size random bytes on each of -conns connections,
//	        check the echo, print bytes and time.
//	both    start a server on a free address, run the client against it, stop the
//	        server; exit 0 when every byte came back in order.
//
// Addresses: tcp "host:port" (default 127.0.0.1:7007, or a free port in both
// mode); unix a socket path (default a new temporary directory's echo.sock in
// both mode); vsock "cid:port", cid a number or "any" (default 1:7007, the local
// context ID; a free port in both mode).
//
// vsock in both mode binds the local context ID (1), which needs the kernel's
// vsock loopback transport (module vsock_loopback). Where it is missing the bind
// fails with EADDRNOTAVAIL and echo says so.
//
// Exit status: 0 on success, 1 on failure, 2 on a usage error.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/vsock"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/sockets"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the parsed command line.
type config struct {
	network, mode, addr string
	size, conns         int
	timeout             time.Duration
}

// errUsage marks a command-line error: exit status 2.
var errUsage = errors.New("usage")

// errNoVsockLoopback is the bind failure of CID 1 on a kernel without the vsock
// loopback transport.
var errNoVsockLoopback = errors.New("this host has no vsock loopback transport: binding the local context ID (1) failed with EADDRNOTAVAIL; load the vsock_loopback module (or run inside a VM) to use -network vsock here")

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "echo:", err)
		return 2
	}
	switch cfg.mode {
	case "server":
		err = runServer(cfg, stdout)
	case "client":
		err = runClient(cfg, stdout)
	case "both":
		err = runBoth(cfg, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "echo:", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.network, "network", "tcp", "tcp, unix or vsock")
	fs.StringVar(&cfg.mode, "mode", "both", "server, client or both")
	fs.StringVar(&cfg.addr, "addr", "", "address to serve or dial (see the package doc for the defaults)")
	fs.IntVar(&cfg.size, "size", 8<<20, "bytes each client connection sends")
	fs.IntVar(&cfg.conns, "conns", 1, "client connections, run concurrently")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "bound on the client's dial and transfer")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch cfg.network {
	case "tcp", "unix", "vsock":
	default:
		return cfg, fmt.Errorf("-network %q: want tcp, unix or vsock", cfg.network)
	}
	switch cfg.mode {
	case "server", "client", "both":
	default:
		return cfg, fmt.Errorf("-mode %q: want server, client or both", cfg.mode)
	}
	if cfg.size < 0 || cfg.conns < 1 {
		return cfg, errors.New("-size must be at least 0 and -conns at least 1")
	}
	return cfg, nil
}

// resolve turns -addr into the address of the network; empty means its default.
func resolve(network, addr string, both bool) (net.Addr, error) {
	switch network {
	case "tcp":
		if addr == "" {
			addr = "127.0.0.1:7007"
			if both {
				addr = "127.0.0.1:0"
			}
		}
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%w: -addr: %v", errUsage, err)
		}
		if a.IP == nil {
			a.IP = net.IPv6unspecified
		}
		return a, nil
	case "unix":
		if addr == "" {
			return nil, fmt.Errorf("%w: -network unix needs -addr, a socket path", errUsage)
		}
		return &net.UnixAddr{Net: "unix", Name: addr}, nil
	default: // vsock
		if addr == "" {
			addr = "1:7007"
			if both {
				addr = "1:0"
			}
		}
		cid, port, ok := strings.Cut(addr, ":")
		if !ok {
			return nil, fmt.Errorf("%w: -addr %q: want cid:port", errUsage, addr)
		}
		a := &vsock.Addr{}
		if cid == "any" {
			a.ContextID = sockets.VsockAnyCID
		} else {
			n, err := strconv.ParseUint(cid, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: -addr %q: context ID: %v", errUsage, addr, err)
			}
			a.ContextID = uint32(n)
		}
		p, err := strconv.ParseUint(port, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: -addr %q: port: %v", errUsage, addr, err)
		}
		a.Port = uint32(p)
		return a, nil
	}
}

// echoHandler writes back every buffer it reads. OnRead's buffer is valid only
// during the call, hence the copy.
type echoHandler struct{ loop.NopHandler }

func (echoHandler) OnRead(c *loop.Channel, p []byte) { c.SendCopy(p, nil) }

// server is a running echo server.
type server struct {
	group *loop.Group
	ln    *loop.Listener
}

func startServer(addr net.Addr) (*server, error) {
	g := loop.NewGroup(0, nil)
	ln, err := g.Serve(addr, func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
		return echoHandler{}, nil
	}, nil)
	if err != nil {
		g.Close()
		if _, ok := addr.(*vsock.Addr); ok && errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, fmt.Errorf("%w (%v)", errNoVsockLoopback, err)
		}
		return nil, fmt.Errorf("listen on %s %v: %w", addr.Network(), addr, err)
	}
	return &server{group: g, ln: ln}, nil
}

// stop closes the listener and shuts the loops down gracefully: connections
// still open flush their echo and close.
func (s *server) stop() error {
	s.ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.group.Shutdown(ctx)
}

func runServer(cfg config, stdout io.Writer) error {
	addr, err := resolve(cfg.network, cfg.addr, false)
	if err != nil {
		return err
	}
	s, err := startServer(addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "echo: serving %s %v on %d loops; interrupt to stop\n", cfg.network, s.ln.Addr(), len(s.group.Loops()))
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	select {
	case <-ctx.Done():
	case <-s.ln.Closed():
		err = s.ln.Err()
	}
	if serr := s.stop(); err == nil {
		err = serr
	}
	return err
}

func runClient(cfg config, stdout io.Writer) error {
	addr, err := resolve(cfg.network, cfg.addr, false)
	if err != nil {
		return err
	}
	g := loop.NewGroup(0, nil)
	defer g.Close()
	return client(g, addr, cfg, stdout)
}

func runBoth(cfg config, stdout io.Writer) (err error) {
	addr := cfg.addr
	if cfg.network == "unix" && addr == "" {
		dir, err := os.MkdirTemp("", "fsmkernel-echo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		addr = filepath.Join(dir, "echo.sock")
	}
	laddr, err := resolve(cfg.network, addr, true)
	if err != nil {
		return err
	}
	s, err := startServer(laddr)
	if err != nil {
		return err
	}
	defer func() {
		if serr := s.stop(); err == nil && serr != nil {
			err = fmt.Errorf("server shutdown: %w", serr)
		}
	}()
	dial := s.ln.Addr()
	if a, ok := dial.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		dial = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.Port}
	}
	fmt.Fprintf(stdout, "echo: serving %s %v\n", cfg.network, dial)
	g := loop.NewGroup(0, nil)
	defer g.Close()
	return client(g, dial, cfg, stdout)
}

// client runs cfg.conns connections concurrently and reports the total.
func client(g *loop.Group, addr net.Addr, cfg config, stdout io.Writer) error {
	start := time.Now()
	errs := make([]error, cfg.conns)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = echoOnce(g, addr, cfg)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d := time.Since(start)
	total := cfg.size * cfg.conns
	fmt.Fprintf(stdout, "echo: %d bytes sent and echoed back intact over %s %v on %d connection(s) in %v (%.1f MB/s each way)\n",
		total, cfg.network, addr, cfg.conns, d.Round(time.Microsecond), float64(total)/d.Seconds()/1e6)
	return nil
}

// echoOnce sends cfg.size random bytes on one connection and checks the echo.
func echoOnce(g *loop.Group, addr net.Addr, cfg config) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	c, err := g.DialConn(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(cfg.timeout)); err != nil {
		return err
	}
	sent := make([]byte, cfg.size)
	rand.Read(sent)
	// Write and read at once: the echo comes back while the rest is still
	// being sent, and neither side's buffers need to hold it all.
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(sent)
		wrote <- err
	}()
	got := make([]byte, len(sent))
	_, rerr := io.ReadFull(c, got)
	if rerr != nil {
		c.Close() // ends the Write too
	}
	if err := <-wrote; err != nil && rerr == nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("read the echo: %w", rerr)
	}
	if i := firstDifference(sent, got); i >= 0 {
		return fmt.Errorf("the echo differs from the bytes sent at offset %d", i)
	}
	return nil
}

func firstDifference(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
