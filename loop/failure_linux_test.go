package loop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// failingWait makes epoll_wait fail with errno once armed.
type failingWait struct {
	pollSystem
	armed *atomic.Bool
	errno unix.Errno
}

func (f failingWait) EpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	if f.armed.Load() {
		return 0, f.errno
	}
	return f.pollSystem.EpollWait(epfd, events, msec)
}

// TestPollerFailure: when epoll_wait fails, the loop takes the abnormal path: its
// channels close with the cause, it ends stopped reporting the cause (netpoll and
// nbio die silently here), and the group serves new connections on its other loop.
func TestPollerFailure(t *testing.T) {
	checkFDs(t)
	var armed atomic.Bool
	g := NewGroup(2, nil)
	bad := g.Loops()[0]
	// Replace loop 0 by one whose poller can be made to fail.
	g.loops[0] = newLoop(0, (&Options{NewPoller: func() (Poller, error) { return newPoller(failingWait{armed: &armed, errno: unix.EINVAL}) }}).withDefaults(), g)
	bad.Close()
	bad = g.loops[0]
	bad.start()

	ln, err := bad.Listen(mustListen(t), func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	time.Sleep(50 * time.Millisecond) // let the loop accept it
	armed.Store(true)
	bad.Execute(func() {}) // wake the loop into the failing wait
	select {
	case <-bad.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not stop after its poller failed")
	}
	err = bad.Wait()
	if !errors.Is(err, ErrLoopFailed) || !errors.Is(err, unix.EINVAL) {
		t.Fatalf("Wait: %v, want ErrLoopFailed with EINVAL", err)
	}
	select {
	case <-ln.Closed():
	case <-time.After(time.Second):
		t.Fatal("the listener of the failed loop is still open")
	}
	if err := bad.Execute(func() {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Execute on the failed loop: %v, want ErrClosed", err)
	}
	// The group goes on: a new server lands on the healthy loop and serves.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ln2 := serveEcho(t, g, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err := echoClient(ln2.Addr(), 7); err != nil {
		t.Fatalf("echo through the surviving loop: %v", err)
	}
	// Shutdown of the group reports the failed loop's cause.
	if err := g.Shutdown(ctx); !errors.Is(err, ErrLoopFailed) {
		t.Fatalf("group shutdown: %v, want the failed loop's cause", err)
	}
	for _, l := range g.Loops() {
		<-l.Done()
	}
}

func mustListen(t *testing.T) *sockets.FD {
	t.Helper()
	fd, err := sockets.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// panicky panics in OnRead.
type panicky struct{ NopHandler }

func (panicky) OnRead(*Channel, []byte) { panic("handler bug") }

// TestHandlerPanicContained: a panic in a handler fails that channel with the
// panic (gnet, nbio and evio crash the process here); the loop serves on.
func TestHandlerPanicContained(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	first := true
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, func(net.Addr) (Handler, *ChannelOptions) {
		if first {
			first = false
			return panicky{}, nil
		}
		return echo{}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c1.Write([]byte("boom"))
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c1.Read(make([]byte, 1)); err == nil {
		t.Fatal("the panicking handler's connection stayed open")
	}
	if n := g.Loops()[0].Counters().PanicsContained.Load(); n != 1 {
		t.Fatalf("PanicsContained = %d, want 1", n)
	}
	if err := echoClient(ln.Addr(), 3); err != nil {
		t.Fatalf("the loop stopped serving after a handler panic: %v", err)
	}
}

// TestOutOfBandClose: another owner closes the channel's descriptor number; the
// next syscall on it says EBADF, and under the contain policy the channel fails
// without touching the number again (no second close), the loop serves on.
func TestOutOfBandClose(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	rec := newRecorder()
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, func(net.Addr) (Handler, *ChannelOptions) {
		return rec, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	wait(t, rec.active, "OnActive")
	l := g.Loops()[0]
	ch := onlyChannel(t, l)
	num := ch.reg.fd.Fd()
	if err := unix.Close(num); err != nil { // the out-of-band close
		t.Fatal(err)
	}
	wantContainedEBADF(t, l, ch)
	if err := echoClient(serveEcho(t, g, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}).Addr(), 5); err != nil {
		t.Fatalf("the loop stopped serving after EBADF: %v", err)
	}
}

// wantContainedEBADF writes to ch, whose descriptor was invalidated out of
// band, and requires the contain policy's outcome: the write fails, the channel
// closes with EBADF, and l counts one contained descriptor.
func wantContainedEBADF(t *testing.T, l *Loop, ch *Channel) {
	t.Helper()
	done := make(chan error, 1)
	ch.Write([]byte("to a number that is no longer ours"), func(err error) { done <- err })
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the write to an invalidated descriptor succeeded")
		}
		t.Logf("the write: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the write was never completed")
	}
	wait(t, ch.Closed(), "the channel failing")
	if !errors.Is(ch.Err(), unix.EBADF) {
		t.Fatalf("channel error %v, want EBADF", ch.Err())
	}
	if n := l.Counters().DescriptorsContained.Load(); n != 1 {
		t.Fatalf("DescriptorsContained = %d, want 1", n)
	}
}

// TestAcceptEMFILEThrottlesAndRecovers: with the descriptor table full, accept
// fails with EMFILE (which stops gnet and evio entirely). Here the listener
// throttles (stops watching, retries on a backoff timer), existing connections
// keep being served, and accepting resumes once descriptors are free again.
//
// The table is filled by construction, not by racing the server's accepts
// against the clients' dials: the clients' sockets are made while there is
// room, RLIMIT_NOFILE is lowered, every number left below it is taken by a
// dup, and only then do the clients connect (connect needs no descriptor, the
// server's accept does).
func TestAcceptEMFILEThrottlesAndRecovers(t *testing.T) {
	checkFDs(t)
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	ln := serveEcho(t, g, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := echoOnce(first, "before"); err != nil {
		t.Fatal(err)
	}
	const clients = 4
	var raw []int
	defer func() {
		for _, fd := range raw {
			unix.Close(fd)
		}
	}()
	for range clients {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, fd)
	}
	var fillers []int
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		for _, fd := range fillers {
			unix.Close(fd)
		}
		fillers = nil
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			t.Error(err)
		}
	}
	defer restore()
	limit := unix.Rlimit{Cur: uint64(fdCount(t) + 16), Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	for {
		fd, err := unix.Dup(raw[0])
		if err == unix.EMFILE {
			break
		}
		if err != nil {
			t.Fatalf("filling the descriptor table: %v", err)
		}
		fillers = append(fillers, fd)
	}
	sa := &unix.SockaddrInet4{Port: ln.Addr().(*net.TCPAddr).Port, Addr: [4]byte{127, 0, 0, 1}}
	for i, fd := range raw {
		if err := unix.Connect(fd, sa); err != nil {
			t.Fatalf("client %d: connect: %v", i, err)
		}
	}
	l := g.Loops()[0]
	deadline := time.Now().Add(10 * time.Second)
	for l.Counters().ListenerThrottles.Load() == 0 {
		if time.Now().After(deadline) {
			restore()
			t.Fatalf("accept never reported EMFILE (limit %d, %d filler descriptors)", limit.Cur, len(fillers))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The existing connection is still served while the listener is throttled.
	if err := echoOnce(first, "during"); err != nil {
		t.Fatalf("an existing connection stopped being served: %v", err)
	}
	// Descriptors free up: accepting resumes and the waiting clients are served.
	restore()
	for i, fd := range raw {
		f := os.NewFile(uintptr(fd), fmt.Sprintf("client %d", i))
		c, err := net.FileConn(f)
		f.Close()
		raw[i] = -1
		if err != nil {
			t.Fatal(err)
		}
		err = echoOnce(c, fmt.Sprintf("after %d", i))
		c.Close()
		if err != nil {
			t.Fatalf("waiting client %d was not served after recovery: %v", i, err)
		}
	}
	t.Logf("throttled %d times; %d waiting clients served after recovery", l.Counters().ListenerThrottles.Load(), clients)
}

func echoOnce(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echoed %q, want %q", buf, msg)
	}
	return nil
}
