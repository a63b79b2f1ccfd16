//go:build linux || darwin || freebsd

package looptest_test

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
)

// TestExampleEchoUnderSimulation is the package documentation's example, run:
// an echo server on two loops of a simulated kernel that makes reads and
// writes short, says EAGAIN and reports readiness that is not there. The
// client gets its bytes back whole; the simulator checks the descriptor
// contracts on every call and at the end, for each of 20 seeds.
// (The faults are drawn: a run may have none; 20 runs have many.)
func TestExampleEchoUnderSimulation(t *testing.T) {
	accepted := func(net.Addr) (loop.Handler, *loop.ChannelOptions) { return echo{}, nil }
	faults := 0
	for seed := uint64(1); seed <= 20; seed++ {
		looptest.Simulate(t, seed, func(s *looptest.Sim) {
			g := loop.NewGroup(2, s.Options(nil))
			ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80}, accepted, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.SetProfile(looptest.Profile{Short: 3000, EAGAIN: 2000, Spurious: 2000})
			p, err := s.Dial(ln.Addr())
			if err != nil {
				t.Fatal(err)
			}
			msg := bytes.Repeat([]byte("hello "), 1000)
			p.Write(msg)
			if !s.RunUntil(func() bool { p.Read(0); return len(p.Received()) == len(msg) }, time.Second) {
				t.Errorf("seed %d: got %d of %d bytes back", seed, len(p.Received()), len(msg))
			}
			if !bytes.Equal(p.Received(), msg) {
				t.Errorf("seed %d: the echo differs from what was sent", seed)
			}
			for _, n := range s.Injected() {
				faults += n
			}
			done := false
			s.Go(func() { g.Shutdown(context.Background()); done = true })
			if !s.RunUntil(func() bool { return done }, time.Minute) {
				t.Errorf("seed %d: Shutdown did not return", seed)
			}
		})
	}
	if faults < 20 {
		t.Errorf("%d faults fired in 20 runs: the test tested too little", faults)
	}
}
