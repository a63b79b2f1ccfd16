//go:build linux || darwin || freebsd

package looptest_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
)

// Failures the swarm found, each pinned by a schedule written out by hand.

// TestSimPollerLostWithWritesQueued: the loop's poller is invalidated
// (its wait says EBADF) while a channel has a write waiting in its inbox to
// a peer that closed. Found by the swarm (seed 0x1e): the loop's failChannels
// let the channel take its inbox first; the write said EPIPE, and the
// channel's close asked the invalidated poller to remove it (epoll_ctl on a
// number the loop had been told was invalid, D2).
func TestSimPollerLostWithWritesQueued(t *testing.T) {
	looptest.Simulate(t, 1, func(s *looptest.Sim) {
		g := loop.NewGroup(1, s.Options(nil))
		var ch *loop.Channel
		ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80}, func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
			return activeHook{func(c *loop.Channel) { ch = c }}, &loop.ChannelOptions{HalfClosure: true}
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Dial(ln.Addr())
		if err != nil {
			t.Fatal(err)
		}
		s.Settle()
		if ch == nil {
			t.Fatal("no channel")
		}
		p.Close()
		s.Settle() // the channel reads EOF and stays open for writes
		pollerFD := s.Pollers()[0]
		var werr error
		ch.Write([]byte("late"), func(err error) { werr = err })
		s.CloseBehind(pollerFD, false)
		done := false
		s.Go(func() { g.Close(); done = true })
		if !s.RunUntil(func() bool { return done }, time.Minute) {
			t.Fatal("Close did not return:\n" + strings.Join(s.Tail(), "\n"))
		}
		if werr == nil {
			t.Error("the write's done said nil after the loop lost its poller")
		}
		_ = context.Background
	})
}

// activeHook is a handler that reports its channel when it becomes active.
type activeHook struct{ active func(*loop.Channel) }

func (h activeHook) OnActive(c *loop.Channel)               { h.active(c) }
func (activeHook) OnRead(*loop.Channel, []byte)             {}
func (activeHook) OnReadComplete(*loop.Channel)             {}
func (activeHook) OnWritabilityChanged(*loop.Channel, bool) {}
func (activeHook) OnInputClosed(*loop.Channel)              {}
func (activeHook) OnError(*loop.Channel, error)             {}
func (activeHook) OnInactive(*loop.Channel)                 {}

// TestSimLastChannelClosedIsDecidedWhenHeard: two connections are admitted
// in one wakeup and the first one's OnActive panics. Found by the swarm (seed
// 0xaf2): the first channel's close told the loop's table "last channel
// closed" while the second's registration was still queued behind it; heard
// after the second was admitted, it left the table believing no channel was
// open, and Close stopped the loop at once, leaking the second connection's
// descriptor.
func TestSimLastChannelClosedIsDecidedWhenHeard(t *testing.T) {
	looptest.Simulate(t, 1, func(s *looptest.Sim) {
		// Two loops: the listener's loop hands the first and third
		// connections to the other, whose inbox then holds both.
		g := loop.NewGroup(2, s.Options(nil))
		n := 0
		ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80}, func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
			n++
			if n == 1 {
				return activeHook{func(*loop.Channel) { panic("planted") }}, nil
			}
			return activeHook{func(*loop.Channel) {}}, nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := s.Dial(ln.Addr()); err != nil {
				t.Fatal(err)
			}
		}
		s.Settle()
		done := false
		s.Go(func() { g.Close(); done = true })
		if !s.RunUntil(func() bool { return done }, time.Minute) {
			t.Fatal("Close did not return")
		}
		if open := s.Open(); len(open) > 0 {
			t.Errorf("descriptors open after Close: %v", open)
		}
	})
}

// TestSimListenerRemovalOutOfMemory: the listener's removal from the poller
// says ENOMEM on the way out. Found by the search (seed 0x1a1d3): the
// listener's table took any failed removal for a number no longer ours and
// abandoned it, leaking its own, good descriptor; the channel's table closes
// after ENOMEM, which says nothing about the number.
func TestSimListenerRemovalOutOfMemory(t *testing.T) {
	looptest.Simulate(t, 1, func(s *looptest.Sim) {
		g := loop.NewGroup(1, s.Options(nil))
		if _, err := g.Serve(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80}, func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
			return activeHook{func(*loop.Channel) {}}, nil
		}, nil); err != nil {
			t.Fatal(err)
		}
		s.Settle()
		s.SetProfile(looptest.Profile{ControlFail: 10000})
		done := false
		s.Go(func() { g.Shutdown(context.Background()); done = true })
		if !s.RunUntil(func() bool { return done }, time.Minute) {
			t.Fatal("Shutdown did not return")
		}
		if s.Injected()["pollerControl ENOMEM"] == 0 {
			t.Fatal("no removal said ENOMEM: the test tested nothing")
		}
		if open := s.Open(); len(open) > 0 {
			t.Errorf("descriptors open after Shutdown: %v", open)
		}
	})
}

// TestSimDialAnsweredWhenNeverAdmitted: a dial whose registration the loop
// never admits is still answered, once, with an error. Found by the swarm
// once Group.Dial was in its schedules (seed 0xb4, a dial without a
// deadline that never returned): the loop's poller was closed behind its
// back while the dial's registration waited in its inbox; the failing loop
// refused it, and the channel's table closed it from fresh (closeFD,
// settleClosed) without failConnect, so connected was never called and
// Group.Dial waited for ever. A registration the poller refuses (ENOMEM on
// its add) ended the same way, through closing.
func TestSimDialAnsweredWhenNeverAdmitted(t *testing.T) {
	remote := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 443}
	for _, tc := range []struct {
		name  string
		setup func(s *looptest.Sim)
	}{
		{"the loop fails first", func(s *looptest.Sim) { s.CloseBehind(s.Pollers()[0], false) }},
		{"the poller's add says ENOMEM", func(s *looptest.Sim) {
			s.SetProfile(looptest.Profile{ControlFail: 10000})
			s.Settle()
			if s.Injected()["pollerControl ENOMEM"] == 0 {
				s.Violate("test", "no add said ENOMEM: the case tested nothing")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			looptest.Simulate(t, 1, func(s *looptest.Sim) {
				g := loop.NewGroup(1, s.Options(nil))
				s.Listen(remote)
				s.Settle()
				answers := 0
				var derr error
				if _, err := g.Loops()[0].Dial(remote, activeHook{func(*loop.Channel) {}}, nil, func(err error) { answers++; derr = err }); err != nil {
					t.Fatal(err)
				}
				tc.setup(s)
				s.Settle()
				done := false
				s.Go(func() { g.Close(); done = true })
				if !s.RunUntil(func() bool { return done }, time.Minute) {
					t.Fatal("Close did not return")
				}
				if answers != 1 || derr == nil {
					t.Errorf("the dial was answered %d times, last with %v; want once, with an error", answers, derr)
				}
			})
		})
	}
}

// TestSimDialRefusedAtOnceIsAnsweredByItsError: Loop.Dial on a loop that has
// stopped returns the error, and connected is not called too (the table's
// failConnect, closing the refused channel from fresh, finds no dial to
// answer): each dial is answered once.
func TestSimDialRefusedAtOnceIsAnsweredByItsError(t *testing.T) {
	looptest.Simulate(t, 1, func(s *looptest.Sim) {
		g := loop.NewGroup(1, s.Options(nil))
		done := false
		s.Go(func() { g.Close(); done = true })
		if !s.RunUntil(func() bool { return done }, time.Minute) {
			t.Fatal("Close did not return")
		}
		answers := 0
		_, err := g.Loops()[0].Dial(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 443}, activeHook{func(*loop.Channel) {}}, nil, func(error) { answers++ })
		s.Settle()
		if err == nil || answers != 0 {
			t.Errorf("Dial on a stopped loop returned %v and called connected %d times; want an error and no call", err, answers)
		}
	})
}

// TestSimWriteEBADFBeforeAnEarlierResult: a write queued above the high
// watermark disarms read and writes in one row; the disarm's change says
// ENOMEM and the write says EBADF (the number was closed behind the
// runtime's back). Found by the swarm once it drew the watermarks (seed
// 0x79db): the disarm's result was heard first and closed the channel, whose
// removal and close(2) then used the number the write had been told was
// invalid (D2). A read's, write's or connect's EBADF now invalidates the
// descriptor at once, as a poller change's does, so that nothing heard
// before its result touches the number.
func TestSimWriteEBADFBeforeAnEarlierResult(t *testing.T) {
	looptest.Simulate(t, 1, func(s *looptest.Sim) {
		k := &keeper{}
		g, _ := serveKept(t, s, k, &loop.ChannelOptions{HighWatermark: 1024})
		fds := s.Registered(true)
		if len(fds) != 1 {
			t.Fatalf("registered connections %v, want one", fds)
		}
		s.CloseBehind(fds[0], false)
		s.SetProfile(looptest.Profile{ControlFail: 10000})
		var werr error
		k.ch.Write(make([]byte, 2048), func(err error) { werr = err })
		s.Settle()
		s.Faults(false)
		if s.Injected()["pollerControl ENOMEM"] == 0 || !closedBy(k.ch) {
			t.Fatalf("the disarm did not say ENOMEM (%v) or the channel is open: the test tested nothing", s.Injected())
		}
		if werr == nil {
			t.Error("the write's done said nil")
		}
		shutdownSim(t, s, g)
	})
}
