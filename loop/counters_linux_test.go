package loop

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// One test per counter of a channel's loop, each asserting the exact count of
// what the counter's doc says it counts. The listener's counters
// (ListenerThrottles, AcceptAborted, its SpuriousReadiness) are in
// TestListenerCounters; DescriptorsContained and PanicsContained of channels
// are exact in TestContractCloseSparesAReusedDescriptorNumber and
// TestContractHandlerPanicCompletesQueuedWrites.

// pingPong sends n one-byte messages on conn, each waiting for its echo: every
// read cycle on the server then delivers one byte.
func pingPong(t *testing.T, conn net.Conn, n int) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(contractWait))
	b := []byte{0}
	for i := 0; i < n; i++ {
		b[0] = byte(i)
		if _, err := conn.Write(b); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		if _, err := io.ReadFull(conn, b); err != nil || b[0] != byte(i) {
			t.Fatalf("pong %d: %v (got %d)", i, err, b[0])
		}
	}
}

// closeOther is a handler that, on the first byte any of its channels reads,
// closes the other channel from the loop itself: the other's readiness in the
// same batch of events is then stale (D3).
type closeOther struct {
	NopHandler
	chans  chan *Channel
	other  map[*Channel]*Channel
	closed atomic.Bool
}

func (h *closeOther) OnActive(c *Channel) { h.chans <- c }

func (h *closeOther) OnRead(c *Channel, p []byte) {
	if h.closed.CompareAndSwap(false, true) {
		h.other[c].fire(chEvent{ev: sm.ChannelEventClose})
	}
}

// TestCounterStaleEvents: both channels become readable in one wait; the first
// dispatched closes the other at once, and the other's event of that wait is
// dropped as stale, counted once, never dispatched.
func TestCounterStaleEvents(t *testing.T) {
	contractFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	l := g.Loops()[0]
	h := &closeOther{chans: make(chan *Channel, 2), other: map[*Channel]*Channel{}}
	ln, err := g.Serve(loopback, func(net.Addr) (Handler, *ChannelOptions) { return h, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	var chans [2]*Channel
	for i := range conns {
		if conns[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
		select {
		case chans[i] = <-h.chans:
		case <-time.After(contractWait):
			t.Fatal("the server never activated the channel")
		}
	}
	// Hold the loop while both peers write, so that one wait reports both.
	release := make(chan struct{})
	held := make(chan struct{})
	if err := l.Execute(func() {
		h.other[chans[0]], h.other[chans[1]] = chans[1], chans[0]
		close(held)
		<-release
	}); err != nil {
		t.Fatal(err)
	}
	<-held
	for _, c := range conns {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // not for correctness: gives the kernel time to mark both readable
	close(release)
	closedOne := false
	for _, c := range chans {
		select {
		case <-c.Closed():
			closedOne = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !closedOne {
		t.Fatal("neither channel was closed by the other's handler")
	}
	barrier(t, l)
	stale := l.Counters().StaleEvents.Load()
	if stale != 1 {
		t.Fatalf("StaleEvents = %d, want 1 (the closed channel's readiness of the same wait)", stale)
	}
	if n := l.Counters().Rejected.Load(); n != 0 {
		t.Fatalf("Rejected = %d, want 0", n)
	}
}

// TestCounterRejected: Rejected counts an event a table rejects (a runtime or
// caller bug), here a read result with no read issued, exactly once; the
// ordinary ends of a channel (the peer's close, then Close) count nothing.
func TestCounterRejected(t *testing.T) {
	contractFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	l := g.Loops()[0]
	ln, active := serveActive(t, g)
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var c *Channel
	select {
	case c = <-active:
	case <-time.After(contractWait):
		t.Fatal("the server never activated the channel")
	}
	pingPong(t, conn, 3)
	if n := l.Counters().Rejected.Load(); n != 0 {
		t.Fatalf("Rejected = %d after an ordinary echo, want 0", n)
	}
	errc := l.Submit(func() error {
		return c.fire(chEvent{ev: sm.ChannelEventRead, out: uint8(sm.ReadResultData)})
	})
	if err := <-errc; err == nil {
		t.Fatal("the table accepted a read result with no read issued")
	}
	if n := l.Counters().Rejected.Load(); n != 1 {
		t.Fatalf("Rejected = %d, want 1", n)
	}
	conn.Close()
	select {
	case <-c.Closed():
	case <-time.After(contractWait):
		t.Fatal("the channel never closed after the peer's close")
	}
	c.Close()
	barrier(t, l)
	if n := l.Counters().Rejected.Load(); n != 1 {
		t.Fatalf("Rejected = %d after the peer's close and Close, want still 1", n)
	}
}
