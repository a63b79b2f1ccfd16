// Package echo holds the echo servers the CPU-per-echo benchmark compares (issue
// 7): the same echo (write back every byte read) over fsmkernel's loop, over Go's
// net with a goroutine per connection, and over github.com/panjf2000/gnet/v2 with
// one event loop. The commands under bench/cmd wrap them; cmd/echobench drives
// them, with the C epoll loop of bench/c as the floor.
package echo

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

// Server is a running echo server.
type Server interface {
	// Addr is the address it listens on.
	Addr() net.Addr
	// Close stops it: the listener and every connection close.
	Close() error
}

// Start starts an echo server on a TCP address such as 127.0.0.1:0.
type Start func(addr string) (Server, error)

// Main is the body of the server commands: it parses -addr, starts the server,
// prints one line "pid PID addr ADDRESS" on stdout and serves until SIGINT or
// SIGTERM. It returns the exit status.
func Main(name string, start Start, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7007", "TCP address to serve; port 0 picks a free one")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", name, fs.Args())
		return 2
	}
	// Ask for the signals before announcing the address, so that a signal sent
	// as soon as the line is read is not lost.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	s, err := start(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stdout, "pid %d addr %s\n", os.Getpid(), s.Addr())
	<-sig
	if err := s.Close(); err != nil {
		fmt.Fprintf(stderr, "%s: close: %v\n", name, err)
		return 1
	}
	return 0
}

// tcpAddr resolves a TCP address to listen on.
func tcpAddr(addr string) (*net.TCPAddr, error) {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	if a.IP == nil {
		a.IP = net.IPv4zero
	}
	return a, nil
}

// ParseAnnounce reads the line the servers print once they listen, "pid PID
// addr ADDRESS" (the C server's too).
func ParseAnnounce(line string) (pid int, addr string, err error) {
	if _, err := fmt.Sscanf(line, "pid %d addr %s", &pid, &addr); err != nil {
		return 0, "", fmt.Errorf("server announced %q, want \"pid PID addr ADDRESS\": %v", line, err)
	}
	return pid, addr, nil
}
