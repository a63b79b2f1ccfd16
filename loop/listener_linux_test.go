package loop

import (
	"net"
	"sync/atomic"
	"testing"
)

// TestAcceptedPanicFailsThatConnectionOnly: a panic in the Accepted callback
// fails the connection it was called for (the server closes it, counted as a
// contained panic) and nothing else: the listener keeps accepting, and the
// next dial is served.
func TestAcceptedPanicFailsThatConnectionOnly(t *testing.T) {
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	var calls atomic.Int32
	ln, err := g.Serve(loopback, func(net.Addr) (Handler, *ChannelOptions) {
		if calls.Add(1) == 1 {
			panic("accept callback bug")
		}
		return echo{}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	peerClosed(t, first)
	if n := g.Loops()[0].Counters().PanicsContained.Load(); n != 1 {
		t.Errorf("PanicsContained = %d, want 1", n)
	}
	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("the second dial: %v", err)
	}
	defer second.Close()
	if err := echoOnce(second, "after the panic"); err != nil {
		t.Fatalf("the listener stopped serving after a panic in Accepted: %v", err)
	}
	select {
	case <-ln.Closed():
		t.Fatalf("the listener closed: %v", ln.Err())
	default:
	}
}
