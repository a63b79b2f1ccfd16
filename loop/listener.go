package loop

import (
	"fmt"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// Accepted is called on the listener's loop for every accepted connection; it
// returns the handler and options of its channel, or a nil handler to refuse it
// (the connection is closed).
type Accepted func(conn net.Addr) (Handler, *ChannelOptions)

// ListenerOptions set the variables of a listener's table.
type ListenerOptions struct {
	// CrashOnInvalidDescriptor panics on EBADF instead of containing it (D2).
	CrashOnInvalidDescriptor bool
	// RepanicHandlerPanics re-raises a panic of Accepted or OnError on the loop.
	RepanicHandlerPanics bool
	// BackoffBase is the first throttling pause after EMFILE and kin; each further
	// one doubles, up to 8 times the base. 0 means 10 ms.
	BackoffBase time.Duration
	// OnError, if set, is told the errors the listener survives (throttling) and
	// the one that closes it.
	OnError func(error)
}

// Listener accepts connections on one loop and hands each to a loop of its group
// (or its own loop).
type Listener struct {
	id       uint64
	reg      registration
	loop     *Loop
	m        sm.Listener
	opts     ListenerOptions
	accepted Accepted
	laddr    net.Addr

	events      events[lnEvent]
	current     lnEvent
	cause       error
	conn        *sockets.FD
	connAddr    net.Addr
	accepts     int
	backoffT    *timer
	handlerDead bool

	closedCh chan struct{}
	closeErr error
	closing  atomic.Bool
}

type lnEvent struct {
	ev    sm.ListenerEvent
	out   uint8
	cause error
}

// Listen serves the listening descriptor ln (from sockets.Listen or Adopt) on the
// loop; each accepted connection becomes a channel on a loop of the group the
// loop belongs to, or on this loop.
func (l *Loop) Listen(ln *sockets.FD, accepted Accepted, o *ListenerOptions) (*Listener, error) {
	x := &Listener{id: channelIDs.Add(1), loop: l, accepted: accepted, closedCh: make(chan struct{})}
	if o != nil {
		x.opts = *o
	}
	if x.opts.BackoffBase <= 0 {
		x.opts.BackoffBase = 10 * time.Millisecond
	}
	opts := sm.DefaultListenerOptions()
	if x.opts.CrashOnInvalidDescriptor {
		opts.EbadfPolicy = sm.ListenerEbadfPolicyCrash
	}
	if x.opts.RepanicHandlerPanics {
		opts.PanicPolicy = sm.ListenerPanicPolicyRepanic
	}
	x.m, _ = sm.NewListener(opts)
	x.reg = registration{fd: ln, ln: x}
	// The address is learnt now: after an EBADF no syscall may touch the number.
	x.laddr, _ = ln.LocalAddr()
	if err := l.register(&x.reg); err != nil {
		ln.Close()
		x.settle(err)
		return nil, err
	}
	return x, nil
}

// Addr returns the listening address.
func (x *Listener) Addr() net.Addr { return x.laddr }

// Close stops accepting and closes the listening descriptor.
func (x *Listener) Close() error {
	if !x.closing.CompareAndSwap(false, true) {
		return nil
	}
	return x.loop.Execute(func() { x.fire(lnEvent{ev: sm.ListenerEventClose}) })
}

// Closed is closed when the listener is closed; Err then returns why.
func (x *Listener) Closed() <-chan struct{} { return x.closedCh }

// Err returns the close cause once Closed is closed.
func (x *Listener) Err() error {
	select {
	case <-x.closedCh:
		return x.closeErr
	default:
		return nil
	}
}

func (x *Listener) settle(err error) {
	x.closeErr = err
	close(x.closedCh)
}

func (x *Listener) ready(ev pollEvent) {
	x.accepts = 0
	if ev.readable || ev.hangup {
		x.fire(lnEvent{ev: sm.ListenerEventReadable})
	}
}

func (x *Listener) fire(e lnEvent) error { return x.events.fire(e, x.step) }

func (x *Listener) step(e lnEvent) error {
	from := x.m.State()
	acts, err := x.m.Fire(e.ev, e.out)
	if t := x.loop.opts.Trace; t != nil {
		x.loop.trace("listener", x.id, from.String(), x.m.State().String(), listenerStep(e), actionNames(acts.Len(), acts.At), err != nil)
	}
	if err != nil {
		x.loop.counters.Rejected.Add(1)
		return err
	}
	if e.cause != nil {
		x.cause = e.cause
	}
	x.current = e
	for i := 0; i < acts.Len(); i++ {
		x.perform(acts.At(i))
	}
	return nil
}

func listenerStep(e lnEvent) string {
	s := e.ev.String()
	switch e.ev {
	case sm.ListenerEventRegistered, sm.ListenerEventPollerControlFailed:
		s += "(" + sm.PollerControlResult(e.out).String() + ")"
	case sm.ListenerEventAccepted:
		s += "(" + sm.AcceptResult(e.out).String() + ")"
	}
	return s
}

// callback runs user code of the listener, recovering a panic at this boundary.
func (x *Listener) callback(fn func()) {
	if x.handlerDead {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			x.handlerDead = true
			x.loop.counters.PanicsContained.Add(1)
			err := &panicError{value: r, stack: debug.Stack(), channel: x.id}
			x.events.raise(lnEvent{ev: sm.ListenerEventHandlerPanicked, cause: err})
		}
	}()
	fn()
}

func (x *Listener) perform(a sm.ListenerAction) {
	l := x.loop
	fd := x.reg.fd
	switch a {
	case sm.ListenerActionArmAccept:
		x.setInterest(true)
	case sm.ListenerActionDisarmAccept:
		x.setInterest(false)
	case sm.ListenerActionRearmAccept:
		// Level-triggered: interest stays armed.
	case sm.ListenerActionAcceptSocket:
		conn, addr, err := fd.Accept()
		x.conn, x.connAddr = conn, addr
		x.accepts++
		out := sockets.ClassifyAccept(err)
		var cause error
		if out != sm.AcceptResultAccepted && out != sm.AcceptResultWouldBlock && out != sm.AcceptResultInterrupted {
			cause = opError("accept", x.Addr(), err)
		}
		x.events.raise(lnEvent{ev: sm.ListenerEventAccepted, out: uint8(out), cause: cause})
	case sm.ListenerActionAdoptConnection:
		conn, addr := x.conn, x.connAddr
		x.conn, x.connAddr = nil, nil
		var h Handler
		var o *ChannelOptions
		x.callback(func() { h, o = x.accepted(addr) })
		if h == nil {
			conn.Close()
			return
		}
		target := l
		if l.group != nil {
			target = l.group.next()
		}
		if _, err := target.registerPeer(conn, addr, h, o); err != nil && x.opts.OnError != nil {
			x.callback(func() { x.opts.OnError(err) })
		}
	case sm.ListenerActionContinueAccept:
		if x.accepts < l.opts.AcceptBudget {
			x.events.raise(lnEvent{ev: sm.ListenerEventAcceptContinue})
		} else {
			x.events.raise(lnEvent{ev: sm.ListenerEventAcceptBudgetSpent})
		}
	case sm.ListenerActionCountSpurious:
		l.counters.SpuriousReadiness.Add(1)
	case sm.ListenerActionCountAborted:
		l.counters.AcceptAborted.Add(1)
	case sm.ListenerActionCountThrottled:
		l.counters.ListenerThrottles.Add(1)
	case sm.ListenerActionStartBackoffTimer:
		d := x.opts.BackoffBase << x.m.Vars().Backoff
		x.backoffT = l.after(d, func() { x.fire(lnEvent{ev: sm.ListenerEventBackoffExpired}) })
	case sm.ListenerActionCancelBackoffTimer:
		l.cancel(x.backoffT)
	case sm.ListenerActionFireError:
		if x.opts.OnError != nil {
			err := x.current.cause
			if err == nil {
				err = x.cause
			}
			x.callback(func() { x.opts.OnError(err) })
		}
	case sm.ListenerActionDeregister:
		l.poller.remove(fd.Fd())
	case sm.ListenerActionCloseFD:
		fd.Close()
	case sm.ListenerActionForgetFD:
		fd.Forget()
		l.stale(&x.reg)
	case sm.ListenerActionCountDescriptorInvalid:
		l.counters.DescriptorsContained.Add(1)
	case sm.ListenerActionPanicWithDiagnostics:
		panic(crashPanic(fmt.Sprintf("fsmkernel: descriptor %d of listener %d invalidated outside the kernel during %s: %v", fd.Fd(), x.id, listenerStep(x.current), x.current.cause)))
	case sm.ListenerActionRepanic:
		panic(x.cause)
	case sm.ListenerActionLeaveLoop:
		l.leave(&x.reg)
	case sm.ListenerActionSettleClosed:
		x.settle(x.cause)
	}
}

func (x *Listener) setInterest(read bool) {
	if err := x.reg.interest(read, false); err != nil {
		out := sockets.ClassifyPollerControl(err)
		x.events.raise(lnEvent{ev: sm.ListenerEventPollerControlFailed, out: uint8(out), cause: opError("poll", nil, err)})
	}
}

// crashPanic is the diagnostic of the crash policy for invalidated descriptors:
// the loop's fault boundary lets it through, so the process stops.
type crashPanic string
