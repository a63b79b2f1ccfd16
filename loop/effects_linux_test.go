package loop

import (
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// effects records what the runtime does to each descriptor number, to check the
// effects of the actions: close(2) at most once per descriptor (D4), and no read,
// write or accept on a number after the runtime closed it.
type effects struct {
	sockets.Syscalls
	mu            sync.Mutex
	live          map[int]bool // descriptors the runtime opened and has not closed
	opens, closes int
	bad           []string
}

func newEffects() *effects {
	return &effects{Syscalls: sockets.System(), live: map[int]bool{}}
}

func (e *effects) use(op string, fd int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.live[fd] {
		e.bad = append(e.bad, fmt.Sprintf("%s on descriptor %d, which the runtime does not hold open", op, fd))
	}
}

func (e *effects) opened(fd int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.live[fd] = true // the kernel may hand a closed number out again
	e.opens++
}

func (e *effects) Socket(f sockets.Family) (int, error) {
	fd, err := e.Syscalls.Socket(f)
	if err == nil {
		e.opened(fd)
	}
	return fd, err
}

func (e *effects) Accept(fd int) (int, net.Addr, error) {
	e.use("accept", fd)
	nfd, peer, err := e.Syscalls.Accept(fd)
	if err == nil {
		e.opened(nfd)
	}
	return nfd, peer, err
}

func (e *effects) Read(fd int, p []byte) (int, error) {
	e.use("read", fd)
	return e.Syscalls.Read(fd, p)
}

func (e *effects) Write(fd int, p []byte) (int, error) {
	e.use("write", fd)
	return e.Syscalls.Write(fd, p)
}

func (e *effects) Writev(fd int, bufs [][]byte) (int, error) {
	e.use("writev", fd)
	return e.Syscalls.Writev(fd, bufs)
}

func (e *effects) Close(fd int) error {
	e.mu.Lock()
	if !e.live[fd] {
		e.bad = append(e.bad, fmt.Sprintf("close of descriptor %d, which the runtime does not hold open (a second close?)", fd))
	}
	e.live[fd] = false
	e.closes++
	e.mu.Unlock()
	return e.Syscalls.Close(fd)
}

// TestEffectsMatchActions runs echo traffic, a refused dial and a shutdown with
// open connections through a recording syscall layer: every descriptor the
// runtime opened is closed exactly once, and none is used after its close.
func TestEffectsMatchActions(t *testing.T) {
	checkFDs(t)
	rec := newEffects()
	g := NewGroup(2, &Options{Syscalls: rec})
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if err := echoClient(ln.Addr(), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Connections still open when the group shuts down are closed by it.
	var open []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c)
	}
	for _, c := range open {
		if err := echoOnce(c, "hi"); err != nil {
			t.Fatal(err)
		}
	}
	shutdown(t, g)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, b := range rec.bad {
		t.Error(b)
	}
	for fd, open := range rec.live {
		if open {
			t.Errorf("descriptor %d was never closed", fd)
		}
	}
	if rec.opens < 8 || rec.closes != rec.opens {
		t.Fatalf("%d descriptors opened, %d closes: want every one closed once, and at least the listener and 7 connections", rec.opens, rec.closes)
	}
}
