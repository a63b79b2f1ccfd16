package looptest_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
)

// keeper is an echo handler that keeps its channel and the errors its writes
// completed with.
type keeper struct {
	loop.NopHandler
	ch      *loop.Channel
	onOpen  []byte // written once active, if set
	written []error
}

func (k *keeper) OnActive(ch *loop.Channel) {
	k.ch = ch
	if k.onOpen != nil {
		ch.Send(k.onOpen, func(err error) { k.written = append(k.written, err) })
	}
}

func (k *keeper) OnRead(ch *loop.Channel, p []byte) { ch.SendCopy(p, nil) }

// serveKept serves one connection with k and options o on a simulated kernel
// and returns the client's peer once the channel is active.
func serveKept(t *testing.T, s *looptest.Sim, k *keeper, o *loop.ChannelOptions) (*loop.Group, *looptest.Peer) {
	t.Helper()
	return serveKeptWith(t, s, k, o, nil)
}

func serveKeptWith(t *testing.T, s *looptest.Sim, k *keeper, o *loop.ChannelOptions, base *loop.Options) (*loop.Group, *looptest.Peer) {
	t.Helper()
	g := loop.NewGroup(1, s.Options(base))
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80}, func(net.Addr) (loop.Handler, *loop.ChannelOptions) { return k, o }, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Dial(ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if !s.RunUntil(func() bool { return k.ch != nil }, time.Second) {
		t.Fatal("the connection was never active")
	}
	return g, p
}

func closedBy(ch *loop.Channel) bool {
	select {
	case <-ch.Closed():
		return true
	default:
		return false
	}
}

func shutdownSim(t *testing.T, s *looptest.Sim, g *loop.Group) {
	done := false
	s.Go(func() { g.Shutdown(context.Background()); done = true })
	if !s.RunUntil(func() bool { return done }, time.Minute) {
		t.Error("Shutdown did not return")
	}
}

// TestIdleTimeoutUnderSimulation: an idle timeout closes the channel exactly
// when nothing was read or written for that long, counted from the last byte,
// and its error says so; traffic postpones it.
func TestIdleTimeoutUnderSimulation(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		looptest.Simulate(t, seed, func(s *looptest.Sim) {
			const idle = 10 * time.Second
			k := &keeper{}
			// Every transition is replayed on the tables, timerFired's included.
			tables := looptest.NewTables()
			var traced []string
			trace := func(st loop.Step) {
				traced = append(traced, st.Event)
				if err := tables.Check(st); err != nil {
					t.Errorf("seed %d: %v", seed, err)
				}
			}
			g, p := serveKeptWith(t, s, k, &loop.ChannelOptions{IdleTimeout: idle}, &loop.Options{Trace: trace})
			defer func() {
				if !slices.Contains(traced, "timerFired(notYet)") || !slices.Contains(traced, "timerFired(idle)") {
					t.Errorf("seed %d: the trace has no timerFired(notYet) and timerFired(idle): %v", seed, traced)
				}
			}()
			for i := range 3 { // traffic every 8 s keeps it open well past 10 s
				s.Advance(8 * time.Second)
				if closedBy(k.ch) {
					t.Fatalf("seed %d: closed after %d exchanges 8 s apart: %v", seed, i, k.ch.Err())
				}
				p.Write([]byte("ping"))
				if !s.RunUntil(func() bool {
					p.Read(0)
					return bytes.HasSuffix(p.Received(), []byte("ping")) && len(p.Received()) == 4*(i+1)
				}, time.Second) {
					t.Fatalf("seed %d: exchange %d: no echo", seed, i)
				}
			}
			last := s.Now()
			if !s.RunUntil(func() bool { return closedBy(k.ch) }, time.Minute) {
				t.Fatalf("seed %d: still open a minute after the last exchange", seed)
			}
			if since := s.Now().Sub(last); since < idle || since > idle+time.Second {
				t.Errorf("seed %d: closed %v after the last exchange, want %v", seed, since, idle)
			}
			err := k.ch.Err()
			var ne net.Error
			if !errors.Is(err, loop.ErrIdleTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("seed %d: close error %v, want ErrIdleTimeout, os.ErrDeadlineExceeded and a timeout net.Error", seed, err)
			}
			if !s.RunUntil(func() bool { p.Read(0); return p.EOF() }, time.Second) {
				t.Errorf("seed %d: the peer never saw the close", seed)
			}
			shutdownSim(t, s, g)
		})
	}
}

// TestWriteTimeoutUnderSimulation: output that a peer does not take fails the
// channel and the pending write after the write timeout, counted from the last
// byte it took, not from the write; a peer that takes some postpones it.
func TestWriteTimeoutUnderSimulation(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		looptest.Simulate(t, seed, func(s *looptest.Sim) {
			const wt = 5 * time.Second
			k := &keeper{onOpen: bytes.Repeat([]byte("w"), 8<<20)} // more than the socket holds
			g, p := serveKept(t, s, k, &loop.ChannelOptions{WriteTimeout: wt, IdleTimeout: time.Hour})
			for i := range 3 { // the peer takes a little every 4 s
				s.Advance(4 * time.Second)
				if closedBy(k.ch) {
					t.Fatalf("seed %d: closed while the peer took output every 4 s (round %d): %v", seed, i, k.ch.Err())
				}
				if len(p.Read(4096)) == 0 {
					t.Fatalf("seed %d: round %d: nothing to read", seed, i)
				}
			}
			s.Settle() // the loop writes into the room the read made
			last := s.Now()
			if !s.RunUntil(func() bool { return closedBy(k.ch) }, time.Minute) {
				t.Fatalf("seed %d: still open a minute after the peer stopped reading", seed)
			}
			if since := s.Now().Sub(last); since < wt || since > wt+time.Second {
				t.Errorf("seed %d: closed %v after the peer last read, want %v", seed, since, wt)
			}
			if err := k.ch.Err(); !errors.Is(err, loop.ErrWriteTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("seed %d: close error %v, want ErrWriteTimeout", seed, err)
			}
			if len(k.written) != 1 || !errors.Is(k.written[0], loop.ErrWriteTimeout) {
				t.Errorf("seed %d: the pending write completed with %v, want one failure wrapping ErrWriteTimeout", seed, k.written)
			}
			shutdownSim(t, s, g)
		})
	}
}

// TestNoTimeoutsNoTimer: without timeouts a quiet connection stays open for
// as long as anyone waits, and the loop has nothing due.
func TestNoTimeoutsNoTimer(t *testing.T) {
	looptest.Simulate(t, 1, func(s *looptest.Sim) {
		k := &keeper{}
		g, _ := serveKept(t, s, k, nil)
		before := s.Turns()
		s.Advance(24 * time.Hour)
		if closedBy(k.ch) {
			t.Fatalf("closed without a timeout: %v", k.ch.Err())
		}
		if s.Turns() != before {
			t.Errorf("the loop took %d turns in a quiet day: something is timed", s.Turns()-before)
		}
		shutdownSim(t, s, g)
	})
}
