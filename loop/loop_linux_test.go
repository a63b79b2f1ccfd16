package loop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/sockets"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fdCount counts this process's open descriptors.
func fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// checkFDs fails the test if the descriptor count is not back to its start when
// the test ends (after the loops it started have stopped).
func checkFDs(t *testing.T) {
	t.Helper()
	start := fdCount(t)
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for {
			n := fdCount(t)
			if n == start {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("descriptors: %d at the start, %d at the end", start, n)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// echo writes back what it reads: with SendCopy on odd channels, with Send of a
// copy on even ones.
type echo struct{ NopHandler }

func (echo) OnRead(c *Channel, p []byte) {
	if c.ID()%2 == 1 {
		c.SendCopy(p, nil)
		return
	}
	c.Send(bytes.Clone(p), nil)
}

func shutdown(t *testing.T, g *Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func serveEcho(t *testing.T, g *Group, addr net.Addr) *Listener {
	t.Helper()
	ln, err := g.Serve(addr, func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestEchoIntegrity(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			checkFDs(t)
			g := NewGroup(2, nil)
			defer shutdown(t, g)
			var addr net.Addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
			if network == "unix" {
				addr = &net.UnixAddr{Net: "unix", Name: filepath.Join(t.TempDir(), "echo.sock")}
			}
			ln := serveEcho(t, g, addr)
			const conns = 16
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for i := 0; i < conns; i++ {
				wg.Add(1)
				go func(seed uint64) {
					defer wg.Done()
					errs <- echoClient(ln.Addr(), seed)
				}(uint64(i))
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// echoClient dials addr and runs echoOver on the connection.
func echoClient(addr net.Addr, seed uint64) error {
	c, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		return err
	}
	defer c.Close()
	return echoOver(c, seed)
}

// echoOver sends random-sized chunks (20, up to 64 KiB each) on c, writing
// while it reads the echo back, and checks every byte comes back in order.
func echoOver(c net.Conn, seed uint64) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := rand.New(rand.NewPCG(seed, 42))
	var sent bytes.Buffer
	for i := 0; i < 20; i++ {
		p := make([]byte, 1+r.IntN(64<<10))
		for j := range p {
			p[j] = byte(r.Uint32())
		}
		sent.Write(p)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(sent.Bytes())
		done <- err
	}()
	got := make([]byte, sent.Len())
	if n, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("%v: read back %d of %d bytes: %w", c.LocalAddr(), n, sent.Len(), err)
	}
	if err := <-done; err != nil {
		return fmt.Errorf("%v: write: %w", c.LocalAddr(), err)
	}
	if i := firstDifference(got, sent.Bytes()); i >= 0 {
		return fmt.Errorf("%v: echoed bytes differ from those sent at offset %d of %d", c.LocalAddr(), i, sent.Len())
	}
	return nil
}

// echoOverMany runs echoOver on n connections at once, each from dial, with
// seeds from 0.
func echoOverMany(t *testing.T, n int, dial func() (net.Conn, error)) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			c, err := dial()
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			errs <- echoOver(c, seed)
		}(uint64(i))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// recorder collects a channel's callbacks for assertions.
type recorder struct {
	mu       sync.Mutex
	events   []string
	data     bytes.Buffer
	inactive chan struct{}
	active   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{inactive: make(chan struct{}), active: make(chan struct{})}
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}
func (r *recorder) OnActive(*Channel) { r.add("active"); close(r.active) }
func (r *recorder) OnRead(_ *Channel, p []byte) {
	r.mu.Lock()
	r.data.Write(p)
	r.mu.Unlock()
}
func (r *recorder) OnReadComplete(*Channel)                 {}
func (r *recorder) OnWritabilityChanged(_ *Channel, w bool) { r.add(fmt.Sprintf("writable=%v", w)) }
func (r *recorder) OnInputClosed(*Channel)                  { r.add("inputClosed") }
func (r *recorder) OnError(_ *Channel, err error)           { r.add("error") }
func (r *recorder) OnInactive(*Channel)                     { r.add("inactive"); close(r.inactive) }

func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e == s {
			return true
		}
	}
	return false
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestHalfClosure(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	rec := newRecorder()
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, func(net.Addr) (Handler, *ChannelOptions) {
		return rec, &ChannelOptions{HalfClosure: true}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	c.(*net.TCPConn).CloseWrite()
	deadline := time.Now().Add(5 * time.Second)
	for !rec.has("inputClosed") {
		if time.Now().After(deadline) {
			t.Fatalf("no inputClosed; events %v", rec.events)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if rec.has("inactive") {
		t.Fatal("channel closed on EOF although half-closure is allowed")
	}
	rec.mu.Lock()
	got := rec.data.String()
	rec.mu.Unlock()
	if got != "hello" {
		t.Fatalf("read %q, want hello", got)
	}
}

func TestConnectRefused(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	// A port nobody listens on: listen, note the port, close.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr()
	probe.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = g.Dial(ctx, addr, NopHandler{}, nil)
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("dial a closed port: %v, want a *net.OpError", err)
	}
}

// neverConnects leaves every connect in progress: the socket is never connected,
// so only the connect deadline can end the dial.
type neverConnects struct{ sockets.Syscalls }

func (neverConnects) Connect(int, net.Addr) error { return unix.EINPROGRESS }

func TestConnectTimeout(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, &Options{Syscalls: neverConnects{sockets.System()}})
	defer shutdown(t, g)
	start := time.Now()
	_, err := g.Dial(context.Background(), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, NopHandler{}, &ChannelOptions{ConnectTimeout: 200 * time.Millisecond})
	if !errors.Is(err, errConnectTimeout) {
		t.Fatalf("dial: %v, want the connect deadline", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Fatalf("the deadline fired after %v, want about 200ms", d)
	}
	if n := g.Loops()[0].Counters().SpuriousReadiness.Load(); n == 0 {
		t.Error("an unconnected socket reports writable|hangup; the spurious writables were not counted")
	}
}

// TestShutdownWithPendingWrites: every write's completion is reported exactly
// once, including writes a forced shutdown fails.
func TestShutdownWithPendingWrites(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	rec := newRecorder()
	var ch *Channel
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, func(net.Addr) (Handler, *ChannelOptions) {
		return rec, &ChannelOptions{HighWatermark: 1 << 30}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = ln
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	wait(t, rec.active, "OnActive")
	ch = onlyChannel(t, g.Loops()[0])
	// The peer never reads: the socket buffers fill and writes stay pending.
	const writes = 200
	var mu sync.Mutex
	completions := map[int]int{}
	var failed int
	var wg sync.WaitGroup
	wg.Add(writes)
	for i := 0; i < writes; i++ {
		i := i
		ch.Write(make([]byte, 64<<10), func(err error) {
			mu.Lock()
			completions[i]++
			if err != nil {
				failed++
			}
			mu.Unlock()
			wg.Done()
		})
	}
	if err := g.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wg.Wait()
	for i := 0; i < writes; i++ {
		if completions[i] != 1 {
			t.Fatalf("write %d completed %d times", i, completions[i])
		}
	}
	if failed == 0 {
		t.Fatal("no write failed although the peer never read 12 MiB")
	}
	wait(t, ch.Closed(), "channel closed")
}

func TestCountersAndAPIAfterStop(t *testing.T) {
	checkFDs(t)
	l := New(nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Execute(func() {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Execute after stop: %v, want ErrClosed", err)
	}
	if err := <-l.Submit(func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after stop: %v, want ErrClosed", err)
	}
}

func TestSubmitRuns(t *testing.T) {
	checkFDs(t)
	l := New(nil)
	defer l.Close()
	want := errors.New("the task's own result")
	if err := <-l.Submit(func() error { return want }); err != want {
		t.Fatalf("Submit: %v", err)
	}
}

// flood writes n bytes when active and records writability changes.
type flood struct {
	NopHandler
	n, chunk int
	rec      *recorder
	done     chan error
}

func (f *flood) OnActive(c *Channel) {
	left := f.n
	for left > 0 {
		k := min(f.chunk, left)
		left -= k
		last := left == 0
		c.Write(make([]byte, k), func(err error) {
			if err != nil || last {
				select {
				case f.done <- err:
				default:
				}
			}
		})
	}
}

func (f *flood) OnWritabilityChanged(c *Channel, w bool) { f.rec.OnWritabilityChanged(c, w) }

func TestWatermarks(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	f := &flood{n: 8 << 20, chunk: 64 << 10, rec: newRecorder(), done: make(chan error, 1)}
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, func(net.Addr) (Handler, *ChannelOptions) {
		return f, &ChannelOptions{HighWatermark: 256 << 10, LowWatermark: 128 << 10}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	// The peer does not read yet: the queue rises above the high watermark.
	deadline := time.Now().Add(5 * time.Second)
	for !f.rec.has("writable=false") {
		if time.Now().After(deadline) {
			t.Fatal("writability never turned false above the high watermark")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f.rec.has("writable=true") {
		t.Fatal("writable again before the peer read anything")
	}
	// Now it reads everything: the queue drains below the low watermark.
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.CopyN(io.Discard, peer, 8<<20); err != nil {
		t.Fatalf("peer read %d bytes: %v", n, err)
	}
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("a write failed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the last write never completed")
	}
	// The low watermark is crossed by the completion of a write, and the
	// table hears it after that write's done: wait for its news, bounded.
	for !f.rec.has("writable=true") {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("writability never came back below the low watermark")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countingEcho echoes and counts the bytes it read.
type countingEcho struct {
	NopHandler
	read *atomic.Int64
}

func (e countingEcho) OnRead(c *Channel, p []byte) {
	e.read.Add(int64(len(p)))
	c.Write(bytes.Clone(p), nil)
}

// TestBackpressureBoundsMemory: a peer that sends without reading what is echoed
// stops being read once the echo's queue is above the high watermark, so the
// server holds a bounded amount, whatever the peer sends.
func TestBackpressureBoundsMemory(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	var read atomic.Int64
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, func(net.Addr) (Handler, *ChannelOptions) {
		return countingEcho{read: &read}, &ChannelOptions{HighWatermark: 1 << 20, LowWatermark: 512 << 10}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan int64, 1)
	go func() {
		peer.SetWriteDeadline(time.Now().Add(time.Second))
		var n int64
		buf := make([]byte, 64<<10)
		for n < 256<<20 {
			k, err := peer.Write(buf)
			n += int64(k)
			if err != nil {
				break
			}
		}
		sent <- n
	}()
	n := <-sent
	got := read.Load()
	peer.Close()
	// Kernel socket buffers on loopback hold a few MiB each way; the server's own
	// queue holds about the high watermark. 64 MiB is far above both.
	if got > 64<<20 {
		t.Fatalf("the server read %d bytes of %d sent while its echoes were not read: no backpressure", got, n)
	}
	if n >= 256<<20 {
		t.Fatalf("the peer sent %d bytes unhindered", n)
	}
	t.Logf("peer sent %d bytes before blocking; the server read %d", n, got)
}

// onlyChannel returns the one channel registered with l.
func onlyChannel(t *testing.T, l *Loop) *Channel {
	t.Helper()
	got := make(chan *Channel, 1)
	l.Execute(func() {
		for _, s := range l.slots {
			if s.reg != nil && s.reg.ch != nil {
				got <- s.reg.ch
				return
			}
		}
		got <- nil
	})
	c := <-got
	if c == nil {
		t.Fatal("no channel registered")
	}
	return c
}

// sendOnInactive writes from OnInactive, when the channel is already closed:
// the write is queued behind the callback, and the table refuses it later.
type sendOnInactive struct {
	NopHandler
	done chan error
}

func (h sendOnInactive) OnInactive(c *Channel) {
	c.Send([]byte("too late"), func(err error) { h.done <- err })
}

// TestWriteRefusedAfterItsCallbackCompletes: a write that a callback queues on
// a channel that has closed completes exactly once, with net.ErrClosed, even
// though the table answers its writeQueued only after the callback returned.
func TestWriteRefusedAfterItsCallbackCompletes(t *testing.T) {
	checkFDs(t)
	h := sendOnInactive{done: make(chan error, 2)}
	_, ch := socketpairChannel(t, h, nil)
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	<-ch.Closed()
	select {
	case err := <-h.done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("the refused write completed with %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the write queued from OnInactive never completed")
	}
	select {
	case err := <-h.done:
		t.Errorf("the write completed a second time: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
}

// splitEcho writes each read back as two writes from the one callback: the
// second write's writeQueued is answered after the first writev was made.
type splitEcho struct{ NopHandler }

func (splitEcho) OnRead(c *Channel, p []byte) {
	half := len(p) / 2
	c.Send(bytes.Clone(p[:half]), nil)
	c.Send(bytes.Clone(p[half:]), nil)
}

// TestWritesQueuedTogetherAllGoOut: the writev of the first write does not
// carry the second, which the table had not yet accepted; the second must not
// be stranded when the first drains.
func TestWritesQueuedTogetherAllGoOut(t *testing.T) {
	checkFDs(t)
	peer, _ := socketpairChannel(t, splitEcho{}, nil)
	if err := unix.SetsockoptTimeval(peer, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5}); err != nil {
		t.Fatal(err)
	}
	msg := []byte("the first half, then the second half")
	got := make([]byte, len(msg))
	for i := 0; i < 3; i++ {
		roundTrip(t, peer, msg, got)
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo %d: %q, want %q", i, got, msg)
		}
	}
}
