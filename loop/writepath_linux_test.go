package loop

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/sockets"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// Tests of the write path found by review, each failing on the code before its
// fix: an interest change's EBADF heard after an older write, an empty write's
// done never called, and a refused flush running loop code on the writer.

// ebadfMod answers EBADF to the first EPOLL_CTL_MOD of fd target (as epoll does
// once the number was closed behind the runtime's back).
type ebadfMod struct {
	pollSystem
	target   atomic.Int64
	modFired atomic.Bool
}

func (p *ebadfMod) EpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	if op == unix.EPOLL_CTL_MOD && int64(fd) == p.target.Load() && p.modFired.CompareAndSwap(false, true) {
		return unix.EBADF
	}
	return p.pollSystem.EpollCtl(epfd, op, fd, ev)
}

type writevAfter struct {
	sockets.Syscalls
	p     *ebadfMod
	mu    sync.Mutex
	after []int
}

func (w *writevAfter) Writev(fd int, bufs [][]byte) (int, error) {
	if int64(fd) == w.p.target.Load() && w.p.modFired.Load() {
		w.mu.Lock()
		w.after = append(w.after, fd)
		w.mu.Unlock()
	}
	return w.Syscalls.Writev(fd, bufs)
}

type sendOnActive struct{ NopHandler }

func (sendOnActive) OnActive(c *Channel) { c.Send([]byte("hello"), nil) }

// TestPollerEBADFHeardBeforeOlderWrite: the row registered(ok) is [fireActive,
// armRead]; OnActive's Send queues writeQueued, then armRead's MOD says EBADF.
// The table must hear pollerControlFailed(descriptorInvalid) before it answers
// the write: no writev on a number epoll just called invalid (D2).
func TestPollerEBADFHeardBeforeOlderWrite(t *testing.T) {
	p := &ebadfMod{}
	p.target.Store(-1)
	sys := &writevAfter{Syscalls: sockets.System(), p: p}
	l := New(&Options{NewPoller: func() (Poller, error) { return newPoller(p) }, Syscalls: sys})
	defer l.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	fd, err := sockets.AdoptFD(fds[0], &sockets.Options{Syscalls: sys})
	unix.Close(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	p.target.Store(int64(fd.Fd()))
	ch, err := l.Register(fd, sendOnActive{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("not closed")
	}
	t.Logf("close cause: %v; contained: %d", ch.Err(), l.Counters().DescriptorsContained.Load())
	sys.mu.Lock()
	defer sys.mu.Unlock()
	if len(sys.after) > 0 {
		t.Fatalf("writev on fd %v after epoll_ctl MOD answered EBADF for it, before the table heard it", sys.after)
	}
}

type activeSignal struct {
	NopHandler
	up chan *Channel
}

func (h *activeSignal) OnActive(c *Channel) { h.up <- c }

// TestWriteEmptyCompletes: an empty write completes (its done is called, nil)
// like any other, also when a graceful shutdown follows at once.
func TestWriteEmptyCompletes(t *testing.T) {
	l := New(nil)
	h := &activeSignal{up: make(chan *Channel, 1)}
	_, ch := pairOnLoop(t, l, h, nil)
	<-h.up
	done := make(chan error, 1)
	ch.Write(nil, func(err error) { done <- err })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-ch.Closed()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the empty write failed: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("the empty write's done was never called; the channel closed and the loop stopped")
	}
}

// slowClose makes close(2) of one number slow, widening the window between
// FailPendingTasks' refuse and the refused channel's settle.
type slowClose struct {
	sockets.Syscalls
	target  atomic.Int64
	inClose chan struct{}
	once    sync.Once
}

func (s *slowClose) Close(fd int) error {
	if int64(fd) == s.target.Load() {
		s.once.Do(func() { close(s.inClose) })
		time.Sleep(100 * time.Millisecond)
	}
	return s.Syscalls.Close(fd)
}

// TestWriteRefusedFlushFailsOffLoop: a registration still in the loop's inbox
// when the loop stops is refused on the loop goroutine (fresh -> closed). A
// Write made meanwhile from another goroutine has its flush task refused: its
// done, and the dones of the Writes it makes, are each called once there,
// touching nothing of the loop's (the race detector watches).
func TestWriteRefusedFlushFailsOffLoop(t *testing.T) {
	sys := &slowClose{Syscalls: sockets.System(), inClose: make(chan struct{})}
	sys.target.Store(-1)
	l := New(&Options{Syscalls: sys})
	// Hold the loop inside a task so that Shutdown and Register queue up.
	blocked, release := make(chan struct{}), make(chan struct{})
	l.Execute(func() { close(blocked); <-release })
	<-blocked
	shut := make(chan error, 1)
	go func() { shut <- l.Shutdown(context.Background()) }()
	waitShutdownRequested(t, l)
	fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(fds[1])
	fd, err := sockets.AdoptFD(fds[0], &sockets.Options{Syscalls: sys})
	unix.Close(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	sys.target.Store(int64(fd.Fd()))
	// Registered after the shutdown request: the loop takes the shutdown,
	// stops (no channel is open), and fails this registration from its inbox.
	ch, err := l.Register(fd, NopHandler{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	<-sys.inClose // the loop is refusing, the channel not yet settled
	var calls atomic.Int32
	var retry func(error)
	retry = func(err error) {
		if calls.Add(1) < 3 {
			ch.Write([]byte("again"), retry) // retry on failure
		}
	}
	ch.Write([]byte("x"), retry)
	<-ch.Closed()
	<-shut
	deadline := time.Now().Add(contractWait)
	for calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d done calls, want 3 (the write and its two retries, each failed once)", n)
	}
}

// TestPollerInvalidatedIsTheLoopsNotTheChannels: the poller's own descriptor is
// closed behind the loop, and a channel's interest change then says EBADF.
// epoll_ctl says EBADF for either descriptor; the poller's probe says it was
// the poller. So the loop fails (pollerLost, the poller's number forgotten,
// never closed), and the channel, whose descriptor is still ours, is closed,
// not abandoned: no descriptor is leaked or contained.
func TestPollerInvalidatedIsTheLoopsNotTheChannels(t *testing.T) {
	contractFDs(t)
	g := NewGroup(1, nil)
	l := g.Loops()[0]
	off := false
	activated := make(chan *Channel, 1)
	ln, err := g.Serve(loopback, func(net.Addr) (Handler, *ChannelOptions) {
		return &activeSignal{up: activated}, &ChannelOptions{AutoRead: &off}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	var ch *Channel
	select {
	case ch = <-activated:
	case <-time.After(contractWait):
		t.Fatal("the channel never became active")
	}
	epfd := -1
	if err := <-l.Submit(func() error {
		// On the loop, so that no wait runs between the close and the change.
		epfd = l.poller.FD()
		if err := unix.Close(epfd); err != nil {
			return err
		}
		ch.fire(chEvent{ev: sm.ChannelEventReadRequest}) // armRead: epoll_ctl MOD
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Done():
	case <-time.After(contractWait):
		t.Fatal("the loop did not stop after its poller was invalidated")
	}
	if err := l.Wait(); !errors.Is(err, ErrLoopFailed) || !strings.Contains(err.Error(), "invalidated outside the loop") {
		t.Fatalf("loop stopped with %v, want ErrLoopFailed naming the invalidated poller", err)
	}
	<-ch.Closed()
	if n := l.Counters().DescriptorsContained.Load(); n != 0 {
		t.Fatalf("DescriptorsContained = %d: the channel's descriptor was taken for the invalid one", n)
	}
	peer.SetReadDeadline(time.Now().Add(contractWait))
	if _, err := peer.Read(make([]byte, 1)); err == nil {
		t.Fatal("the peer read data, want EOF: the channel's socket should be closed")
	}
	g.Close()
}

// TestRegisterOnStoppedLoopClosesThroughTheTable: a loop that stopped refuses
// registrations at submit; the channel's or listener's table then closes the
// descriptor (fresh on close: closeFD, settleClosed), once, and the error is
// ErrClosed. No descriptor is left behind.
func TestRegisterOnStoppedLoopClosesThroughTheTable(t *testing.T) {
	contractFDs(t)
	l := New(nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var steps []string
	l.opts.Trace = func(s Step) { steps = append(steps, s.Machine+" "+s.Event+" "+strings.Join(s.Actions, ",")) }

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	fd, err := sockets.AdoptFD(fds[0], nil)
	unix.Close(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	ch, err := l.Register(fd, NopHandler{}, nil)
	if ch != nil || !errors.Is(err, ErrClosed) {
		t.Fatalf("Register on a stopped loop: %v, %v; want nil, ErrClosed", ch, err)
	}
	if !fd.Closed() {
		t.Fatal("the refused channel's descriptor is still open")
	}

	if _, err := l.Dial(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, NopHandler{}, nil, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Dial on a stopped loop: %v, want ErrClosed", err)
	}
	lnfd := mustListen(t)
	if _, err := l.Listen(lnfd, func(net.Addr) (Handler, *ChannelOptions) { return nil, nil }, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Listen on a stopped loop: %v, want ErrClosed", err)
	}
	if !lnfd.Closed() {
		t.Fatal("the refused listener's descriptor is still open")
	}
	// The dial's row answers it (failConnect), which finds it answered by
	// Dial's error and calls nothing.
	want := []string{"channel close closeFD,settleClosed", "channel close closeFD,failConnect,settleClosed", "listener close closeFD"}
	var got []string
	for _, s := range steps {
		if strings.HasSuffix(s, "closeFD,settleClosed") || strings.HasSuffix(s, "closeFD,failConnect,settleClosed") || strings.HasSuffix(s, "close closeFD") {
			got = append(got, s)
		}
	}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("the tables' closes: %q, want %q (all steps: %q)", got, want, steps)
	}
}
