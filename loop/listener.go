package loop

import (
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// Accepted is called on the listener's loop for every accepted connection; it
// returns the handler and options of its channel, or a nil handler to refuse it
// (the connection is closed). A panic in it fails that connection only: it is
// closed and counted in Counters.PanicsContained, and the listener accepts on.
//
// Options that ChannelOptions.Validate refuses fail that connection only, too:
// it is closed without a channel (the handler hears nothing), the listener's
// OnError is told Validate's error, and the listener accepts on.
type Accepted func(conn net.Addr) (Handler, *ChannelOptions)

// ListenerOptions set the variables of a listener's table.
type ListenerOptions struct {
	// CrashOnInvalidDescriptor panics on EBADF instead of containing it (D2).
	CrashOnInvalidDescriptor bool
	// RepanicHandlerPanics re-raises a panic of Accepted or OnError on the loop.
	RepanicHandlerPanics bool
	// BackoffBase is the first throttling pause after EMFILE and kin; each further
	// one doubles, up to 8 times the base. 0 means 10 ms; it may not be
	// negative.
	BackoffBase time.Duration
	// OnError, if set, is told the errors the listener survives (throttling, a
	// connection whose channel could not be made) and the one that closes it.
	OnError func(error)
}

// Validate reports an option out of range, naming it and its value: a negative
// BackoffBase. A nil *ListenerOptions is valid.
func (o *ListenerOptions) Validate() error {
	if o != nil && o.BackoffBase < 0 {
		return fmt.Errorf("loop: ListenerOptions.BackoffBase %v is negative", o.BackoffBase)
	}
	return nil
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
	// conn and addr are the connection of accepted(accepted), and of adopted
	// when no channel took it: closeConnection closes it.
	conn *sockets.FD
	addr net.Addr
	// connection says cause is one connection's (adopted): fireError and repanic
	// report it, but it is not the listener's close cause.
	connection bool
}

// Listen serves the listening descriptor ln (from sockets.Listen or Adopt) on the
// loop; each accepted connection becomes a channel on a loop of the group the
// loop belongs to, or on this loop. On an error (options that Validate refuses,
// a loop that is stopping) ln is closed.
func (l *Loop) Listen(ln *sockets.FD, accepted Accepted, o *ListenerOptions) (*Listener, error) {
	bad := o.Validate()
	if bad != nil {
		o = nil // the listener only closes: its table, with the defaults, does it
	}
	x := &Listener{id: channelIDs.Add(1), loop: l, accepted: accepted, closedCh: make(chan struct{})}
	if o != nil {
		x.opts = *o
	}
	if x.opts.BackoffBase == 0 {
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
	if bad != nil {
		x.reg.refused(bad) // fresh on close: the table closes the descriptor
		return nil, bad
	}
	// The address is learnt now: after an EBADF no syscall may touch the number.
	x.laddr, _ = ln.LocalAddr()
	if err := l.register(&x.reg); err != nil {
		x.reg.refused(err) // the table closes the descriptor (fresh on close)
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

func (x *Listener) ready(ev PollEvent) {
	x.accepts = 0
	if ev.Readable || ev.Hangup {
		x.fire(lnEvent{ev: sm.ListenerEventReadable})
	}
}

func (x *Listener) fire(e lnEvent) error { return x.events.fire(e, x.step) }

func (x *Listener) step(e lnEvent) error {
	if x.loop.tracing() {
		defer traceRegion(regionListener, listenerStep(e)).End()
	}
	from := x.m.State()
	acts, err := x.m.Fire(e.ev, e.out)
	if r := x.loop.ring; r != nil {
		r.listener(x, from, e, acts, err)
	}
	if t := x.loop.opts.Trace; t != nil {
		x.loop.trace("listener", x.id, from.String(), x.m.State().String(), listenerStep(e), actionNames(acts.Len(), acts.At), err != nil)
	}
	if err != nil {
		x.loop.counters.Rejected.Add(1)
		return err
	}
	if e.cause != nil && !e.connection {
		x.cause = e.cause
	}
	x.current = e
	for i := 0; i < acts.Len(); i++ {
		acts.At(i).PerformOn(lnPerformer{x})
	}
	return nil
}

func listenerStep(e lnEvent) string {
	return stepName(e.ev.String(), e.ev.OutcomeString(e.out))
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

// lnPerformer performs the listener machine's actions: sm.ListenerPerformer, one
// method per action, so a table action without a performer does not build.
type lnPerformer struct{ *Listener }

var _ sm.ListenerPerformer = lnPerformer{}

func (x lnPerformer) ArmAccept() { x.setInterest(true) }

func (x lnPerformer) DisarmAccept() { x.setInterest(false) }

func (lnPerformer) RearmAccept() {
	// Level-triggered: interest stays armed.
}

func (x lnPerformer) AcceptSocket() {
	fd := x.reg.fd
	conn, addr, err := fd.Accept()
	x.accepts++
	out := sockets.ClassifyAccept(err)
	var cause error
	if out != sm.AcceptResultAccepted && out != sm.AcceptResultWouldBlock && out != sm.AcceptResultInterrupted {
		cause = opError("accept", x.Addr(), err)
	}
	x.events.raiseResult(lnEvent{ev: sm.ListenerEventAccepted, out: uint8(out), cause: cause, conn: conn, addr: addr})
}

func (x lnPerformer) AdoptConnection() { x.events.raise(x.adopt(x.current.conn, x.current.addr)) }

func (x lnPerformer) CloseConnection() {
	err := x.current.conn.Close()
	var cause error
	if err != nil {
		cause = opError("close", x.connAddr(), err)
	}
	x.events.raiseResult(lnEvent{ev: sm.ListenerEventConnectionReleased, out: uint8(sockets.ClassifyClose(err)), cause: cause, connection: true})
}

// connAddr is the peer of the connection being closed, for its error.
func (x lnPerformer) connAddr() net.Addr { return x.current.addr }

func (x lnPerformer) CountConnectionInvalid() { x.loop.counters.DescriptorsContained.Add(1) }

func (x lnPerformer) CountPanic() { x.loop.counters.PanicsContained.Add(1) }

func (x lnPerformer) ContinueAccept() {
	l := x.loop
	if x.accepts < l.opts.AcceptBudget {
		x.events.raise(lnEvent{ev: sm.ListenerEventAcceptContinue})
	} else {
		x.events.raise(lnEvent{ev: sm.ListenerEventAcceptBudgetSpent})
	}
}

func (x lnPerformer) CountSpurious() { x.loop.counters.SpuriousReadiness.Add(1) }

func (x lnPerformer) CountAborted() { x.loop.counters.AcceptAborted.Add(1) }

func (x lnPerformer) CountThrottled() { x.loop.counters.ListenerThrottles.Add(1) }

func (x lnPerformer) StartBackoffTimer() {
	l := x.loop
	d := x.opts.BackoffBase << x.m.Vars().Backoff
	x.backoffT = l.after(d, func() { x.fire(lnEvent{ev: sm.ListenerEventBackoffExpired}) })
}

func (x lnPerformer) CancelBackoffTimer() { x.loop.cancel(x.backoffT) }

func (x lnPerformer) FireError() {
	if x.opts.OnError != nil {
		err := x.currentCause()
		x.callback(func() { x.opts.OnError(err) })
	}
}

func (x lnPerformer) Deregister() {
	l := x.loop
	fd := x.reg.fd
	if fd.Gone() {
		// Invalidated by an earlier action of this row: the removal is not
		// made (D2), and its answer is the one the kernel gave then.
		x.events.raiseResult(lnEvent{ev: sm.ListenerEventDeregistered, out: uint8(sm.PollerControlResultDescriptorInvalid), cause: x.fdError("close", sockets.ErrClosed)})
		return
	}
	err := l.poller.Remove(fd.Fd())
	if l.pollerLost(err) {
		return // the loop fails; its loopFailed finishes the close without the poller
	}
	out := sockets.ClassifyPollerControl(err)
	var cause error
	if err != nil {
		cause = x.fdError("close", os.NewSyscallError(pollControlCall, err))
	}
	x.events.raiseResult(lnEvent{ev: sm.ListenerEventDeregistered, out: uint8(out), cause: cause})
}

func (x lnPerformer) CloseFD() {
	fd := x.reg.fd
	err := fd.Close()
	out := sockets.ClassifyClose(err)
	var cause error
	if err != nil {
		cause = x.fdError("close", err)
	}
	x.events.raiseResult(lnEvent{ev: sm.ListenerEventCloseReturned, out: uint8(out), cause: cause})
}

func (x lnPerformer) ForgetFD() {
	l := x.loop
	fd := x.reg.fd
	fd.Forget()
	l.stale(&x.reg)
}

func (x lnPerformer) CountDescriptorInvalid() { x.loop.counters.DescriptorsContained.Add(1) }

func (x lnPerformer) PanicWithDiagnostics() {
	fd := x.reg.fd
	panic(crashPanic(fmt.Sprintf("fsmkernel: descriptor %d of listener %d invalidated outside the kernel during %s: %v", fd.Fd(), x.id, listenerStep(x.current), x.current.cause)))
}

func (x lnPerformer) Repanic() { panic(x.currentCause()) }

func (x lnPerformer) LeaveLoop() { x.loop.leave(&x.reg) }

func (x lnPerformer) SettleClosed() { x.settle(x.cause) }

// adopt performs adoptConnection for conn, accepted from addr: it calls
// Accepted under recover (a panic there is that connection's, not the
// listener's) and registers the channel returned on a loop of the group. The
// result is the adopted event; it keeps conn when no channel took it.
func (x *Listener) adopt(conn *sockets.FD, addr net.Addr) lnEvent {
	e := lnEvent{ev: sm.ListenerEventAdopted, connection: true}
	h, o, err := x.callAccepted(addr)
	switch {
	case err != nil:
		e.out, e.cause, e.conn, e.addr = uint8(sm.AdoptResultPanicked), err, conn, addr
	case h == nil:
		e.out, e.conn, e.addr = uint8(sm.AdoptResultRefused), conn, addr
	default:
		target := x.loop
		if target.group != nil {
			target = target.group.next()
		}
		if _, err := target.registerPeer(conn, addr, h, o); err != nil {
			e.out, e.cause = uint8(sm.AdoptResultRegisterFailed), err // registerPeer closed conn
		} else {
			e.out = uint8(sm.AdoptResultRegistered)
		}
	}
	return e
}

// callAccepted calls Accepted, recovering a panic at this boundary as the
// returned error.
func (x *Listener) callAccepted(addr net.Addr) (h Handler, o *ChannelOptions, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, o = nil, nil
			err = &panicError{value: r, stack: debug.Stack(), channel: x.id}
		}
	}()
	h, o = x.accepted(addr)
	return h, o, nil
}

// currentCause is the error of the event being answered, or else the
// listener's cause.
func (x *Listener) currentCause() error {
	if x.current.cause != nil {
		return x.current.cause
	}
	return x.cause
}

// fdError names the listening descriptor's number in err, a failure of op on
// it: after EBADF or a reused number the number is the diagnostic (D2).
func (x *Listener) fdError(op string, err error) error {
	return opError(op, x.laddr, fmt.Errorf("fd %d: %w", x.reg.fd.Fd(), err))
}

func (x *Listener) setInterest(read bool) {
	if err := x.reg.interest(read, false); err != nil {
		if err == sockets.ErrClosed {
			return // refused without a call: the number's EBADF is already the table's
		}
		if x.loop.pollerLost(err) {
			return // the loop fails; its loopFailed closes the listener
		}
		out := sockets.ClassifyPollerControl(err)
		if out == sm.PollerControlResultDescriptorInvalid {
			x.reg.fd.Invalidate() // no later action of this list may touch the number
		}
		x.events.raiseResult(lnEvent{ev: sm.ListenerEventPollerControlFailed, out: uint8(out), cause: opError("poll", nil, err)})
	}
}

// crashPanic is the diagnostic of the crash policy for invalidated descriptors:
// the loop's fault boundary lets it through, so the process stops.
type crashPanic string
