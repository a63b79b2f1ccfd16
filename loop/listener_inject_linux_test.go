package loop_test

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
	"github.com/fsmkernel/fsmkernel/sockets"
)

// abortingAccept makes the first accept4(2) say ECONNABORTED without taking
// the connection from the backlog, as a connection reset while it waited would
// (the fault injector has no such fault).
type abortingAccept struct {
	sockets.Syscalls
	aborted atomic.Bool
}

func (s *abortingAccept) Accept(fd int) (int, net.Addr, error) {
	if s.aborted.CompareAndSwap(false, true) {
		return -1, nil, unix.ECONNABORTED
	}
	return s.Syscalls.Accept(fd)
}

// TestListenerCounters: each listener counter counts exactly the injected
// faults: one EMFILE is one throttling episode, one ECONNABORTED one aborted
// connection, one EAGAIN on the first accept of a cycle one spurious
// readiness. In each, the connection waiting in the backlog is accepted after.
func TestListenerCounters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    func() (*loop.Options, *looptest.Injector)
		counter func(*loop.Counters) uint64
	}{
		{
			name: "ListenerThrottles on EMFILE",
			opts: func() (*loop.Options, *looptest.Injector) {
				inj := looptest.NewInjector(12, looptest.Rule{Op: looptest.OpAccept, Fault: looptest.FaultEMFILE, Every: 1, Count: 1})
				return inj.Options(nil), inj
			},
			counter: func(c *loop.Counters) uint64 { return c.ListenerThrottles.Load() },
		},
		{
			name: "AcceptAborted on ECONNABORTED",
			opts: func() (*loop.Options, *looptest.Injector) {
				return &loop.Options{Syscalls: &abortingAccept{Syscalls: sockets.System()}}, nil
			},
			counter: func(c *loop.Counters) uint64 { return c.AcceptAborted.Load() },
		},
		{
			name: "SpuriousReadiness on EAGAIN",
			opts: func() (*loop.Options, *looptest.Injector) {
				inj := looptest.NewInjector(12, looptest.Rule{Op: looptest.OpAccept, Fault: looptest.FaultEAGAIN, Every: 1, Count: 1})
				return inj.Options(nil), inj
			},
			counter: func(c *loop.Counters) uint64 { return c.SpuriousReadiness.Load() },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loop.CheckFDs(t)
			opts, inj := tc.opts()
			g := loop.NewGroup(1, opts)
			defer loop.ShutdownGroup(t, g)
			accepted := make(chan struct{}, 1)
			ln, err := g.Serve(loop.Loopback, func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
				accepted <- struct{}{}
				return loop.NopHandler{}, nil
			}, &loop.ListenerOptions{BackoffBase: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			loop.WaitFor(t, accepted, "the connection accepted after the fault")
			l := g.Loops()[0]
			if n := tc.counter(l.Counters()); n != 1 {
				t.Errorf("%s: counted %d, want 1", tc.name, n)
			}
			if n := l.Counters().Rejected.Load(); n != 0 {
				t.Errorf("Rejected = %d, want 0", n)
			}
			if inj != nil {
				noMisuse(t, inj)
			}
		})
	}
}
