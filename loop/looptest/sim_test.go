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

// simEcho runs an echo server on two loops of a simulation, with three peers
// that each send a message and read it back, then shuts down; it returns the
// run's trace hash.
func simEcho(t *testing.T, seed uint64) (hash uint64) {
	looptest.Simulate(t, seed, func(s *looptest.Sim) {
		g := loop.NewGroup(2, s.Options(nil))
		addr := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80}
		ln, err := g.Serve(addr, func(net.Addr) (loop.Handler, *loop.ChannelOptions) { return echo{}, nil }, nil)
		if err != nil {
			t.Fatal(err)
		}
		var peers []*looptest.Peer
		for i := 0; i < 3; i++ {
			p, err := s.Dial(ln.Addr())
			if err != nil {
				t.Fatal(err)
			}
			peers = append(peers, p)
		}
		s.Settle()
		for i, p := range peers {
			msg := bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1))
			if n := p.Write(msg); n != len(msg) {
				t.Fatalf("peer %d wrote %d of %d", i, n, len(msg))
			}
		}
		s.RunUntil(func() bool {
			for i, p := range peers {
				p.Read(0)
				if len(p.Received()) < 1000*(i+1) {
					return false
				}
			}
			return true
		}, time.Second)
		for i, p := range peers {
			if want := bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1)); !bytes.Equal(p.Received(), want) {
				t.Errorf("peer %d got %d bytes back, want %d", i, len(p.Received()), len(want))
			}
		}
		var serr error
		done := false
		s.Go(func() { serr = g.Shutdown(context.Background()); done = true })
		if !s.RunUntil(func() bool { return done }, time.Minute) {
			t.Fatal("Shutdown did not return")
		}
		if serr != nil {
			t.Errorf("Shutdown: %v", serr)
		}
		for i, p := range peers {
			if !p.EOF() {
				t.Errorf("peer %d saw no EOF after Shutdown", i)
			}
		}
		hash = s.TraceHash()
		t.Logf("turns %d, syscalls %d, hash %#x", s.Turns(), s.SyscallCount(), hash)
	})
	return hash
}

func TestSimEcho(t *testing.T) { simEcho(t, 1) }

// TestSimDeterministic: one seed gives one run, to the last system call; two
// seeds give two.
func TestSimDeterministic(t *testing.T) {
	first := simEcho(t, 7)
	for i := 0; i < 5; i++ {
		if h := simEcho(t, 7); h != first {
			t.Fatalf("run %d of seed 7: trace hash %#x, first run %#x", i+2, h, first)
		}
	}
	if simEcho(t, 8) == first {
		t.Fatal("seeds 7 and 8 gave the same trace")
	}
}
