package loop

// Contract tests: symptoms a user found, written as the behaviour the API
// promises. Run them with -run TestContract.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// contractWait bounds every wait of these tests: long enough for a loaded
// 2-core machine under the race detector, short enough to fail clearly.
const contractWait = 10 * time.Second

// contractFDs is checkFDs for a test that may be the first of the process to
// use package net: Go's own poller opens its descriptors (an epoll instance and
// an eventfd) at the first use and keeps them, which checkFDs would count as
// leaked. They are opened here, before the count starts.
func contractFDs(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	checkFDs(t)
}

// completions records the done callbacks of numbered writes: how often each
// was called and with what.
type completions struct {
	mu    sync.Mutex
	calls []int
	errs  []error
	seen  int           // writes whose done was called at least once
	all   chan struct{} // closed once every write's done was called
}

func newCompletions(n int) *completions {
	return &completions{calls: make([]int, n), errs: make([]error, n), all: make(chan struct{})}
}

// done returns the done callback of write i.
func (r *completions) done(i int) func(error) {
	return func(err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls[i]++
		if r.calls[i] == 1 {
			r.errs[i] = err
			r.seen++
			if r.seen == len(r.calls) {
				close(r.all)
			}
		}
	}
}

// waitAll waits until every write's done was called, and fails naming the
// writes whose done never was.
func (r *completions) waitAll(t *testing.T, what string) {
	t.Helper()
	select {
	case <-r.all:
	case <-time.After(contractWait):
		r.mu.Lock()
		var missing []int
		for i, n := range r.calls {
			if n == 0 {
				missing = append(missing, i)
			}
		}
		r.mu.Unlock()
		t.Fatalf("%s: after %v, %d of %d done callbacks were never called (writes %v)", what, contractWait, len(missing), len(r.calls), missing)
	}
}

// once fails the test for every write whose done was not called exactly once,
// and returns the writes' errors.
func (r *completions) once(t *testing.T) []error {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range r.calls {
		if n != 1 {
			t.Errorf("write %d: done called %d times, want exactly once", i, n)
		}
	}
	return append([]error(nil), r.errs...)
}

// barrier returns once the loop has run every task submitted before it: the
// writes of Channel.Write submitted earlier have reached their channel.
func barrier(t *testing.T, l *Loop) {
	t.Helper()
	select {
	case err := <-l.Submit(func() error { return nil }):
		if err != nil {
			t.Fatalf("barrier task: %v", err)
		}
	case <-time.After(contractWait):
		t.Fatal("the loop did not run a task within the wait")
	}
}

// shrinkSendBuffer makes the kernel hold little of what the channel writes, so
// that writes of 256 KiB stay queued in the channel while the peer reads
// nothing. It runs on the loop, which owns the descriptor.
func shrinkSendBuffer(t *testing.T, ch *Channel) {
	t.Helper()
	select {
	case err := <-ch.Loop().Submit(func() error {
		return unix.SetsockoptInt(ch.reg.fd.Fd(), unix.SOL_SOCKET, unix.SO_SNDBUF, 32<<10)
	}):
		if err != nil {
			t.Fatalf("SO_SNDBUF: %v", err)
		}
	case <-time.After(contractWait):
		t.Fatal("the loop did not run a task within the wait")
	}
}

// pairOnLoop registers one end of a Unix socketpair with l, driven by h, and
// returns the other end (blocking), which the test's cleanup closes. The loop's
// shutdown is the caller's (socketpairChannel makes a loop of its own).
func pairOnLoop(t testing.TB, l *Loop, h Handler, o *ChannelOptions) (peer int, ch *Channel) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := sockets.AdoptFD(fds[0], nil)
	unix.Close(fds[0])
	if err != nil {
		unix.Close(fds[1])
		t.Fatal(err)
	}
	ch, err = l.Register(fd, h, o)
	if err != nil {
		unix.Close(fds[1])
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[1]) })
	return fds[1], ch
}

func waitClosed(t *testing.T, ch *Channel, what string) {
	t.Helper()
	select {
	case <-ch.Closed():
	case <-time.After(contractWait):
		t.Fatalf("timed out after %v waiting for %s", contractWait, what)
	}
}

// pattern is n bytes that differ from one offset to the next, seeded.
func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7) ^ byte(i>>8) ^ seed
	}
	return p
}

// writeEcho echoes every read with Channel.Write (not Send) and records each
// write's outcome.
type writeEcho struct {
	NopHandler
	calls, dones atomic.Int64
	mu           sync.Mutex
	failed       []error
}

func (h *writeEcho) OnRead(c *Channel, p []byte) {
	h.calls.Add(1)
	c.Write(bytes.Clone(p), func(err error) {
		if err != nil {
			h.mu.Lock()
			h.failed = append(h.failed, err)
			h.mu.Unlock()
		}
		h.dones.Add(1)
	})
}

// halfCloseClient sends payload, shuts its sending side (SHUT_WR), reads until
// EOF and checks that it read back exactly what it sent.
func halfCloseClient(addr net.Addr, payload []byte) error {
	c, err := net.DialTimeout("tcp", addr.String(), contractWait)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(contractWait))
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		sent <- err
	}()
	got, rerr := io.ReadAll(c)
	if err := <-sent; err != nil {
		return fmt.Errorf("%v: send %d bytes and shut the sending side: %w", c.LocalAddr(), len(payload), err)
	}
	if rerr != nil {
		return fmt.Errorf("%v: read %d of %d echoed bytes, then: %w", c.LocalAddr(), len(got), len(payload), rerr)
	}
	if i := firstDifference(got, payload); i >= 0 {
		return fmt.Errorf("%v: got back %d of %d bytes before EOF (first difference at offset %d)", c.LocalAddr(), len(got), len(payload), i)
	}
	return nil
}

// TestContractHalfClosingClientGetsWholeEcho: a client that sends, then shuts
// its sending side and reads until EOF, gets back every byte it sent from an
// echo written with Channel.Write, and every Write completes with nil. The
// channel does not allow half-closure: the peer's EOF closes it, but only
// after the writes its handler made before the EOF went out.
func TestContractHalfClosingClientGetsWholeEcho(t *testing.T) {
	for _, size := range []int{6, 300 << 10} {
		t.Run(fmt.Sprintf("%dB", size), func(t *testing.T) {
			contractFDs(t)
			g := NewGroup(2, nil)
			defer shutdown(t, g)
			h := &writeEcho{}
			ln, err := g.Serve(loopback, func(net.Addr) (Handler, *ChannelOptions) { return h, nil }, nil)
			if err != nil {
				t.Fatal(err)
			}
			const clients = 10
			errs := make(chan error, clients)
			var wg sync.WaitGroup
			for i := 0; i < clients; i++ {
				wg.Add(1)
				go func(seed byte) {
					defer wg.Done()
					errs <- halfCloseClient(ln.Addr(), pattern(size, seed))
				}(byte(i))
			}
			wg.Wait()
			close(errs)
			short := 0
			for err := range errs {
				if err != nil {
					short++
					t.Error(err)
				}
			}
			if short > 0 {
				t.Errorf("%d of %d half-closing clients did not get their whole echo", short, clients)
			}
			// Every Write the handler made completes, with nil.
			deadline := time.Now().Add(contractWait)
			for h.dones.Load() != h.calls.Load() {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d echo writes never completed", h.calls.Load()-h.dones.Load(), h.calls.Load())
				}
				time.Sleep(2 * time.Millisecond)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if len(h.failed) > 0 {
				t.Errorf("%d of %d echo writes failed; the first: %v", len(h.failed), h.calls.Load(), h.failed[0])
			}
		})
	}
}

// boundedEcho echoes with Channel.Write from OnRead and measures its own
// channel's output: bytes handed to Write (counted at the call) whose done has
// not fired yet.
type boundedEcho struct {
	NopHandler
	unwritable chan<- struct{} // told once, at the first writable=false

	mu          sync.Mutex
	outstanding int
	max         int
	writes      int
	sawFalse    bool
	failed      []error
}

func (h *boundedEcho) OnRead(c *Channel, p []byte) {
	n := len(p)
	h.mu.Lock()
	h.outstanding += n
	h.max = max(h.max, h.outstanding)
	h.writes++
	h.mu.Unlock()
	c.Write(bytes.Clone(p), func(err error) {
		h.mu.Lock()
		h.outstanding -= n
		if err != nil {
			h.failed = append(h.failed, err)
		}
		h.mu.Unlock()
	})
}

func (h *boundedEcho) OnWritabilityChanged(_ *Channel, writable bool) {
	if writable {
		return
	}
	h.mu.Lock()
	first := !h.sawFalse
	h.sawFalse = true
	h.mu.Unlock()
	if first {
		h.unwritable <- struct{}{}
	}
}

// TestContractWatermarkBoundsWritesFromCallbacks: bytes an OnRead hands to
// Channel.Write count toward the channel's watermarks from the call: the output
// queued for a channel (accepted by Write, not yet completed) never exceeds the
// high watermark plus the one write that crossed it, here one read buffer.
// Peers flood the server and do not read their echo until every channel has
// reported itself unwritable, then read it back in small reads.
func TestContractWatermarkBoundsWritesFromCallbacks(t *testing.T) {
	contractFDs(t)
	const (
		high    = 64 << 10
		low     = 32 << 10
		readBuf = 16 << 10
		peers   = 8
		perPeer = 2 << 20
	)
	g := NewGroup(2, &Options{ReadBufferSize: readBuf})
	defer shutdown(t, g)
	unwritable := make(chan struct{}, peers)
	var mu sync.Mutex
	var handlers []*boundedEcho
	addr := &net.UnixAddr{Net: "unix", Name: filepath.Join(t.TempDir(), "flood.sock")}
	ln, err := g.Serve(addr, func(net.Addr) (Handler, *ChannelOptions) {
		h := &boundedEcho{unwritable: unwritable}
		mu.Lock()
		handlers = append(handlers, h)
		mu.Unlock()
		return h, &ChannelOptions{HighWatermark: high, LowWatermark: low}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{}) // the peers start reading
	errs := make(chan error, 2*peers)
	var wg sync.WaitGroup
	for i := 0; i < peers; i++ {
		c, err := net.DialTimeout("unix", ln.Addr().String(), contractWait)
		if err != nil {
			close(start)
			wg.Wait()
			t.Fatal(err)
		}
		payload := pattern(perPeer, byte(i))
		wg.Add(2)
		go func() { // the sender: as fast as it can
			defer wg.Done()
			c.SetWriteDeadline(time.Now().Add(3 * contractWait))
			for off := 0; off < len(payload); off += 64 << 10 {
				if _, err := c.Write(payload[off:min(off+64<<10, len(payload))]); err != nil {
					errs <- fmt.Errorf("peer %d: send at offset %d: %w", i, off, err)
					return
				}
			}
		}()
		go func() { // the reader: not at all, then slowly
			defer wg.Done()
			defer c.Close()
			<-start
			c.SetReadDeadline(time.Now().Add(3 * contractWait))
			got := make([]byte, 0, perPeer)
			buf := make([]byte, 4<<10)
			for len(got) < perPeer {
				n, err := c.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					errs <- fmt.Errorf("peer %d: read %d of %d echoed bytes: %w", i, len(got), perPeer, err)
					return
				}
			}
			if d := firstDifference(got, payload); d >= 0 {
				errs <- fmt.Errorf("peer %d: the echo differs at offset %d", i, d)
			}
		}()
	}
	timeout := time.After(contractWait)
	reported := 0
wait:
	for reported < peers {
		select {
		case <-unwritable:
			reported++
		case <-timeout:
			break wait
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if reported < peers {
		t.Errorf("OnWritabilityChanged(false) fired on %d of %d flooded channels within %v", reported, peers, contractWait)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handlers) != peers {
		t.Fatalf("%d channels accepted, want %d", len(handlers), peers)
	}
	const bound = high + readBuf
	over := 0
	for i, h := range handlers {
		h.mu.Lock()
		if h.max > bound {
			over++
			t.Errorf("channel %d: up to %d bytes accepted by Write and not completed, above the high watermark (%d) plus one write of a read buffer (%d) = %d", i, h.max, high, readBuf, bound)
		}
		if len(h.failed) > 0 {
			t.Errorf("channel %d: %d of %d echo writes failed; the first: %v", i, len(h.failed), h.writes, h.failed[0])
		}
		t.Logf("channel %d: max outstanding %d bytes over %d writes", i, h.max, h.writes)
		h.mu.Unlock()
	}
	if over > 0 {
		t.Errorf("%d of %d channels queued more than %d bytes", over, peers, bound)
	}
}

// TestContractHandlerPanicCompletesQueuedWrites: writes queued on a channel
// whose handler then panics are each completed exactly once, with an error:
// the panic stops the handler's callbacks, not the writes' completions.
func TestContractHandlerPanicCompletesQueuedWrites(t *testing.T) {
	contractFDs(t)
	peer, ch := socketpairChannel(t, panicky{}, &ChannelOptions{HighWatermark: 1 << 30})
	shrinkSendBuffer(t, ch)
	const writes = 16
	rec := newCompletions(writes)
	for i := 0; i < writes; i++ {
		ch.Write(make([]byte, 256<<10), rec.done(i))
	}
	barrier(t, ch.Loop()) // all 16 are queued on the channel; the peer reads nothing
	if _, err := unix.Write(peer, []byte{1}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch, "the panicking handler's channel to close")
	rec.waitAll(t, "writes queued when the handler panicked")
	barrier(t, ch.Loop())
	for i, err := range rec.once(t) {
		if err == nil {
			t.Errorf("write %d completed with nil, although the peer read nothing of its 256 KiB", i)
		}
	}
	if n := ch.Loop().Counters().PanicsContained.Load(); n != 1 {
		t.Errorf("PanicsContained = %d, want 1", n)
	}
}

// TestContractPanickingCompletionDoesNotStopOthers: a done callback that
// panics does not keep the other writes' done callbacks from being called.
func TestContractPanickingCompletionDoesNotStopOthers(t *testing.T) {
	contractFDs(t)
	_, ch := socketpairChannel(t, NopHandler{}, &ChannelOptions{HighWatermark: 1 << 30})
	shrinkSendBuffer(t, ch)
	const writes = 8
	rec := newCompletions(writes)
	for i := 0; i < writes; i++ {
		done := rec.done(i)
		if i == 0 {
			done = func(err error) {
				rec.done(0)(err)
				panic("a bug in the first write's done callback")
			}
		}
		ch.Write(make([]byte, 256<<10), done)
	}
	barrier(t, ch.Loop())
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch, "the closed channel")
	rec.waitAll(t, "writes failed by Close, the first of whose done callbacks panics")
	barrier(t, ch.Loop())
	for i, err := range rec.once(t) {
		if err == nil {
			t.Errorf("write %d completed with nil, although the peer read nothing", i)
		}
	}
}

// TestContractShutdownDeliversAcceptedWrites: a graceful shutdown right after
// writes were made delivers them: every done reports nil, the peer reads every
// byte then EOF, and Shutdown returns nil.
func TestContractShutdownDeliversAcceptedWrites(t *testing.T) {
	contractFDs(t)
	g := NewGroup(1, nil)
	defer g.Close() // after Shutdown, a no-op; on an early failure, the cleanup
	ln, active := serveActive(t, g)
	peer, ch := connect(t, ln.Addr(), active)
	type result struct {
		n   int64
		err error
	}
	read := make(chan result, 1)
	go func() { // the peer reads everything, until EOF
		peer.SetReadDeadline(time.Now().Add(contractWait))
		n, err := io.Copy(io.Discard, peer)
		read <- result{n, err}
	}()
	// Hold the loop while the writes and the shutdown are submitted, so that
	// it takes them in together, as a busy loop would: Shutdown is called
	// right after the Writes returned.
	l := g.Loops()[0]
	blocked, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()
	if err := l.Execute(func() { close(blocked); <-release }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-blocked:
	case <-time.After(contractWait):
		t.Fatal("the loop did not run a task within the wait")
	}
	const writes, size = 8, 256 << 10
	rec := newCompletions(writes)
	for i := 0; i < writes; i++ {
		ch.Write(make([]byte, size), rec.done(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- g.Shutdown(ctx) }()
	waitShutdownRequested(t, l)
	unblock()
	serr := <-shut
	r := <-read
	if serr != nil {
		t.Errorf("Shutdown: %v, want nil: the peer read everything", serr)
	}
	rec.waitAll(t, "writes made just before the graceful shutdown")
	for i, err := range rec.once(t) {
		if err != nil {
			t.Errorf("write %d: %v, want nil", i, err)
		}
	}
	switch {
	case r.err != nil:
		t.Errorf("the peer read %d of %d bytes, then: %v (want EOF after all of them)", r.n, writes*size, r.err)
	case r.n != writes*size:
		t.Errorf("the peer read %d of %d bytes before EOF", r.n, writes*size)
	}
}

// waitShutdownRequested waits until a graceful shutdown request is in l's
// inbox. Should the runtime come to ask for shutdowns otherwise, it gives up
// after two seconds: the test then only loses its determinism.
func waitShutdownRequested(t *testing.T, l *Loop) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		queued := false
		for _, r := range l.inbox {
			queued = queued || r.kind == reqShutdownGracefully
		}
		l.mu.Unlock()
		if queued {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Log("no shutdown request seen in the loop's inbox; releasing the loop anyway")
}

// TestContractShutdownDeadlineReportsForcedClose: when a graceful shutdown's
// context ends before the queued writes went out, the shutdown is forced and
// Shutdown says so (context.DeadlineExceeded); every write still queued fails,
// each exactly once.
func TestContractShutdownDeadlineReportsForcedClose(t *testing.T) {
	contractFDs(t)
	l := New(nil)
	defer l.Close()
	_, ch := pairOnLoop(t, l, NopHandler{}, &ChannelOptions{HighWatermark: 1 << 30})
	shrinkSendBuffer(t, ch)
	const writes = 8
	rec := newCompletions(writes)
	for i := 0; i < writes; i++ {
		ch.Write(make([]byte, 256<<10), rec.done(i))
	}
	barrier(t, l) // queued on the channel; the peer never reads
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := l.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown whose deadline forced the close: %v, want an error that is context.DeadlineExceeded", err)
	}
	rec.waitAll(t, "writes queued when the shutdown was forced")
	failed := 0
	for _, err := range rec.once(t) {
		if err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Error("no write failed, although the peer read nothing of 2 MiB")
	}
}

// TestContractCloseSparesAReusedDescriptorNumber: the channel's descriptor is
// closed behind the loop's back and its number reused by a file of the test's.
// Channel.Close must not close that file: the loop detects that the number is
// no longer its socket, contains it, and the channel closes with an error.
func TestContractCloseSparesAReusedDescriptorNumber(t *testing.T) {
	contractFDs(t)
	_, ch := socketpairChannel(t, NopHandler{}, nil)
	barrier(t, ch.Loop()) // registered
	content := []byte("the test's own file")
	path := filepath.Join(t.TempDir(), "reuse")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	num := ch.reg.fd.Fd()
	// On the loop goroutine, so that nothing of the loop's comes in between:
	// close the socket's number out of band and open the file until it has it.
	file := -1
	var extra []int
	var reuse error
	select {
	case reuse = <-ch.Loop().Submit(func() error {
		if err := unix.Close(num); err != nil {
			return fmt.Errorf("close %d: %w", num, err)
		}
		for i := 0; i < 1000; i++ {
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			if fd == num {
				file = fd
				return nil
			}
			extra = append(extra, fd)
		}
		return fmt.Errorf("the file never got number %d", num)
	}):
	case <-time.After(contractWait):
		t.Fatal("the loop did not run a task within the wait")
	}
	for _, fd := range extra {
		unix.Close(fd)
	}
	if reuse != nil {
		t.Fatal(reuse)
	}
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitClosed(t, ch, "the channel to close")
	barrier(t, ch.Loop())
	// Is number num still the test's file?
	var st unix.Stat_t
	if err := unix.Fstat(file, &st); err != nil || st.Dev != want.Dev || st.Ino != want.Ino {
		// Closed (or closed and reused): not the test's to close any more.
		t.Errorf("Channel.Close closed descriptor %d, which was the test's file, not its socket (fstat: %v)", file, err)
	} else {
		f := os.NewFile(uintptr(file), path)
		got := make([]byte, len(content)+1)
		n, err := f.Read(got)
		if err != nil || !bytes.Equal(got[:n], content) {
			t.Errorf("reading the test's file after Channel.Close: %q, %v; want %q", got[:n], err, content)
		}
		f.Close()
	}
	if n := ch.Loop().Counters().DescriptorsContained.Load(); n != 1 {
		t.Errorf("DescriptorsContained = %d, want 1", n)
	}
	if ch.Err() == nil {
		t.Error("the channel whose number was taken by another file closed cleanly (Err() == nil), want an error")
	}
}

// TestContractCloseAfterPeerCloseIsNotRejected: Channel.Close on a channel that
// already closed (its peer closed) is a no-op, not an event the table rejects.
func TestContractCloseAfterPeerCloseIsNotRejected(t *testing.T) {
	contractFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	ln, active := serveActive(t, g)
	peer, ch := connect(t, ln.Addr(), active)
	peer.Close()
	waitClosed(t, ch, "the channel to close after its peer closed")
	l := ch.Loop()
	barrier(t, l)
	before := l.Counters().Rejected.Load()
	if err := ch.Close(); err != nil {
		t.Errorf("Close of a closed channel: %v", err)
	}
	barrier(t, l) // the close, had it been queued, has been handled
	if after := l.Counters().Rejected.Load(); after != before {
		t.Errorf("Rejected went from %d to %d on Close of a channel its peer had closed", before, after)
	}
}

// TestContractAcceptedPanicKeepsListening: a panic in the Accepted callback
// costs that one connection, not the listener: the next connection is served.
func TestContractAcceptedPanicKeepsListening(t *testing.T) {
	contractFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	var calls atomic.Int32
	ln, err := g.Serve(loopback, func(net.Addr) (Handler, *ChannelOptions) {
		if calls.Add(1) == 1 {
			panic("a bug in Accepted")
		}
		return echo{}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := g.Loops()[0]
	first, err := net.DialTimeout("tcp", ln.Addr().String(), contractWait)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	deadline := time.Now().Add(contractWait)
	for l.Counters().PanicsContained.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the panic in Accepted was never contained")
		}
		time.Sleep(2 * time.Millisecond)
	}
	second, err := net.DialTimeout("tcp", ln.Addr().String(), contractWait)
	if err != nil {
		t.Fatalf("dial after the panic in Accepted: %v (listener closed: %v)", err, isClosed(ln.Closed()))
	}
	defer second.Close()
	second.SetDeadline(time.Now().Add(contractWait))
	msg := []byte("served after the panic")
	if _, err := second.Write(msg); err != nil {
		t.Fatalf("write to the second connection: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(second, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo on the second connection: %q, %v (listener closed: %v, its error: %v)", got, err, isClosed(ln.Closed()), ln.Err())
	}
	if n := l.Counters().PanicsContained.Load(); n != 1 {
		t.Errorf("PanicsContained = %d, want 1", n)
	}
}
