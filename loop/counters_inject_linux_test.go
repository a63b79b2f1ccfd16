package loop_test

import (
	"net"
	"testing"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
)

// The counter tests that inject faults; the others are in counters_linux_test.go.

// TestCounterSpuriousReadinessChannel: a read cycle whose first read says
// EAGAIN is spurious readiness (R1), counted once; a cycle that delivered and
// then found EAGAIN is not.
func TestCounterSpuriousReadinessChannel(t *testing.T) {
	loop.ContractFDs(t)
	inj := looptest.NewInjector(1, looptest.Rule{Op: looptest.OpRead, Fault: looptest.FaultEAGAIN, Every: 2, Count: 3})
	g := loop.NewGroup(1, inj.Options(nil))
	defer loop.ShutdownGroup(t, g)
	ln := loop.ServeEcho(t, g, loop.Loopback)
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	loop.PingPong(t, conn, 20)
	if n := inj.Injected(looptest.FaultEAGAIN); n != 3 {
		t.Fatalf("injected %d EAGAINs, want 3", n)
	}
	// The read cycles of a ping-pong end with a short read, never with EAGAIN:
	// every EAGAIN is a cycle's first read.
	if n := g.Loops()[0].Counters().SpuriousReadiness.Load(); n != 3 {
		t.Fatalf("SpuriousReadiness = %d, want 3 (one per injected EAGAIN on a cycle's first read)", n)
	}
	noMisuse(t, inj)
}
