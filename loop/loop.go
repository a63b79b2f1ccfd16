package loop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// Errors a loop returns.
var (
	// ErrClosed is returned for work submitted to a loop that is shutting down or
	// stopped, and is the cause of writes failed by a forced shutdown.
	ErrClosed = errors.New("loop: closed")
	// ErrLoopFailed wraps the cause of a loop that took the abnormal path.
	ErrLoopFailed = errors.New("loop: failed")
	// ErrForced is returned by a Shutdown whose deadline forced the close, and
	// wrapped (with ErrClosed) by the writes such a close failed.
	ErrForced = errors.New("loop: shutdown forced")
)

// errForcedClose is the cause of the channels a forced shutdown closes.
var errForcedClose = fmt.Errorf("%w (%w)", ErrClosed, ErrForced)

// Options configure a loop. A field left 0 takes the default its comment
// gives; a negative duration, budget or size is an error (see Validate).
type Options struct {
	// DrainTimeout bounds a graceful shutdown before it is forced; 0 means 30 s.
	DrainTimeout time.Duration
	// TaskBudget bounds the tasks run per wakeup, so that tasks cannot starve I/O;
	// 0 means 256.
	TaskBudget int
	// ReadBudget bounds the reads of one channel per wakeup, so that one busy
	// channel cannot starve the others; 0 means 16.
	ReadBudget int
	// AcceptBudget bounds the accepts of one listener per wakeup; 0 means 64.
	AcceptBudget int
	// ReadBufferSize is the size of the loop's read buffer in bytes; 0 means
	// 64 KiB.
	ReadBufferSize int
	// Trace, if set, is called for every transition of every machine the loop
	// drives, one call at a time, in the order of the transitions, under the
	// loop's lock: on the loop goroutine, or on the goroutine of a Conn's Read
	// or Write that took its channel's step while the loop waited (see Conn).
	// It costs one nil check when unset.
	Trace func(Step)
	// TraceRegions, if set, marks each wakeup and each transition as a region
	// of runtime/trace while a trace is being taken: fsmkernel.wakeup, and
	// fsmkernel.channel, .listener or .eventloop with the event logged in it.
	// Off, or on with no trace running, it costs a branch per transition;
	// under a running trace about 1.8 µs and 7 allocations per echo
	// (BenchmarkEchoTraceRegions).
	TraceRegions bool
	// Record, if positive, keeps the loop's last Record transitions (of its
	// own machine, its channels' and its listeners'), rounded up to a power
	// of two, in a ring of 64-byte records written on the loop goroutine
	// without allocating. Recording returns them, DumpOn writes them when a
	// channel fails, and fsmgen replay checks them against the tables; the
	// format is docs/recording.md's. On, an echo of the runtime alone takes
	// about 4.4% more time and 5.2% more instructions
	// (BenchmarkEchoRecordPaired, bench/scripts/instructions.sh). 0 records
	// nothing and costs a nil check per transition.
	Record int
	// DumpOn, if set, is asked, where Trace is called, about each channel whose
	// table ends it (closed or abandoned) with an error, the one Err will
	// return. If it returns a writer, the loop's recording, ending with that
	// channel's last step, is written to it there and then, before the step's
	// actions; the loop waits for it. It needs Record.
	DumpOn func(ch *Channel, err error) io.Writer

	// Syscalls, if set, makes the system calls of the sockets that Dial and
	// Group.Serve open, and of the connections their listeners accept (a fault
	// injector's, a simulator's); nil means sockets.System(). Descriptors given
	// to Listen and Adopt keep the calls they were made with.
	Syscalls sockets.Syscalls
	// NewPoller, if set, creates the loop's poller: called once per loop, on
	// the loop's goroutine as it starts; nil means NewPoller.
	NewPoller func() (Poller, error)
	// Clock, if set, is the time of every timer, deadline and wait timeout of
	// the loop and its Conns; nil means SystemClock().
	Clock Clock
}

// Validate reports the first option out of range, naming it and its value: a
// negative DrainTimeout, TaskBudget, ReadBudget, AcceptBudget, ReadBufferSize
// or Record, or a DumpOn without Record. A nil *Options is valid. Start and
// StartGroup return this error; New and NewGroup panic with it.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	if o.DrainTimeout < 0 {
		return fmt.Errorf("loop: Options.DrainTimeout %v is negative", o.DrainTimeout)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"TaskBudget", o.TaskBudget},
		{"ReadBudget", o.ReadBudget},
		{"AcceptBudget", o.AcceptBudget},
		{"ReadBufferSize", o.ReadBufferSize},
		{"Record", o.Record},
	} {
		if f.v < 0 {
			return fmt.Errorf("loop: Options.%s %d is negative", f.name, f.v)
		}
	}
	if o.DumpOn != nil && o.Record == 0 {
		return fmt.Errorf("loop: Options.DumpOn is set but Options.Record is 0: there is nothing to dump")
	}
	return nil
}

// withDefaults returns the options with their 0 fields set to the defaults;
// opts must be valid.
func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.DrainTimeout == 0 {
		r.DrainTimeout = 30 * time.Second
	}
	if r.TaskBudget == 0 {
		r.TaskBudget = 256
	}
	if r.ReadBudget == 0 {
		r.ReadBudget = 16
	}
	if r.AcceptBudget == 0 {
		r.AcceptBudget = 64
	}
	if r.ReadBufferSize == 0 {
		r.ReadBufferSize = 64 << 10
	}
	if r.Syscalls == nil {
		r.Syscalls = sockets.System()
	}
	if r.NewPoller == nil {
		r.NewPoller = NewPoller
	}
	if r.Clock == nil {
		r.Clock = SystemClock()
	}
	return r
}

// Step is one transition a machine took, as recorded by Options.Trace.
type Step struct {
	Machine  string // "eventloop", "channel" or "listener"
	ID       uint64 // the channel's or listener's id; the loop's index in its group
	From, To string // states
	Event    string // event with its outcome, e.g. "read(wouldBlock)"
	Actions  []string
	Rejected bool
}

// Counters are a loop's counts of outcomes and policy decisions. Each counts
// exactly what its comment says; loop's counters tests assert each one.
type Counters struct {
	// SpuriousReadiness: readiness that found nothing to do (R1): a read
	// cycle whose first read said EAGAIN, a write that would block while write
	// interest was armed, a writable connect still in progress, an accept
	// cycle that accepted nothing.
	SpuriousReadiness atomic.Uint64
	// StaleEvents: poller events of a registration that had ended, dropped
	// instead of reaching whoever took its slot or number (D3).
	StaleEvents atomic.Uint64
	// DescriptorsContained: descriptors found invalidated outside the kernel
	// (EBADF; or a removal from the poller answering that the number no longer
	// names our file) whose channel or listener failed without the number being
	// touched again (D2).
	DescriptorsContained atomic.Uint64
	// PanicsContained: panics recovered from user code: handlers, write
	// completions, the Accepted callback and a listener's OnError.
	PanicsContained atomic.Uint64
	// ListenerThrottles: accept cycles that stopped on EMFILE, ENFILE, ENOBUFS
	// or ENOMEM and throttled their listener.
	ListenerThrottles atomic.Uint64
	// AcceptAborted: connections that died in the backlog (ECONNABORTED,
	// EPROTO), skipped.
	AcceptAborted atomic.Uint64
	// Rejected: events a table rejected, which are runtime or caller bugs.
	// The ordinary ends of a channel are not: a write refused because its
	// channel is no longer open fails, and a Close after the channel ended is
	// ignored.
	Rejected atomic.Uint64
}

// task is work run on the loop goroutine; fail reports that it never will.
type task struct {
	run  func()
	fail func(error)
}

// request is something another goroutine asks of the loop.
type request struct {
	kind requestKind
	task task
	reg  *registration
}

type requestKind uint8

const (
	reqTask requestKind = iota
	reqRegister
	reqShutdownGracefully
	reqShutdownNow
)

// loopEvent is an event for the loop's own machine, queued while actions run.
type loopEvent struct {
	ev    sm.EventloopEvent
	out   uint8
	cause error
	req   request
}

// Loop is one event loop: a goroutine, its poller, and the channels and
// listeners registered with it. The goroutine is not locked to its OS thread:
// nothing in epoll or kqueue needs it, and a locked goroutine that blocks in
// the poller costs a futex handoff of its thread at every wakeup.
type Loop struct {
	id   int
	opts Options

	mu    sync.Mutex
	inbox []request
	// inboxLen is len(inbox), written under mu and read without it, so that a
	// wakeup with nothing submitted takes no lock. A request that comes after
	// the loop read 0 also wakes the poller, so it is not missed.
	inboxLen atomic.Int32
	spare    []request // the other inbox array, swapped in by dispatchReady
	refuse   bool      // set by failPendingTasks: the inbox takes nothing more
	poller   Poller
	started  chan struct{}

	// Loop-goroutine state.
	m         sm.Eventloop
	events    []PollEvent
	ev        events[loopEvent]
	tasks     []task
	slots     []regSlot // the registry, by slot
	free      []uint32
	timers    timerHeap
	waitNext  bool
	current   loopEvent
	cause     error
	drain     *timer
	readBuf   []byte
	iov       [][]byte   // channels' writev scratch, MaxIovecs long
	lenders   []*Channel // channels whose queued writes borrow readBuf
	lastReady int
	touched   int // keeps dispatchReady's touching loads

	done     chan struct{}
	stopErr  error
	forced   bool // forceCloseChannels was performed; read after done
	reported bool // reportStopped was performed: run closes done as it returns
	counters Counters
	// registered counts the channels and listeners in the registry: written
	// on the loop goroutine, read by Stats from any.
	registered atomic.Int64
	group      *Group
	ring       *stepRing // Options.Record's; nil when it is 0

	// turn is the loop's lock. The loop goroutine holds it for everything it
	// does, from the moment the poller's Wait returns to the next Wait, and
	// releases it only around Wait (and never once it has stopped). What is
	// called loop-goroutine state here is state under turn: a Conn's Read or
	// Write that finds turn free while the loop waits takes its channel's step
	// itself, holding turn (beginInline), exactly as the loop would have.
	turn sync.Mutex
	// inline says that the poller takes Add, Modify and Remove while another
	// goroutine waits in it (see concurrentControl), so that a Conn may step
	// its channel during the loop's Wait. Written once as the loop starts,
	// before started is closed.
	inline bool
	// parker is the poller when it can park the loop's goroutine instead of
	// blocking its thread (the system's epoll), else nil; conns counts the
	// Conn channels the loop admitted and has not seen leave, and the loop
	// parks while there are any (epoller.setParking says why).
	parker parkingPoller
	conns  int
	// inlineHead is the earliest timer when a step off the loop began; one
	// that changes it must wake the loop, whose wait was set for the old one.
	inlineHead *timer
}

// New starts a loop. It panics if opts is invalid (see Options.Validate);
// Start returns that error instead.
func New(opts *Options) *Loop {
	l, err := Start(opts)
	if err != nil {
		panic(err)
	}
	return l
}

// Start starts a loop, like New, or returns the error of Options.Validate,
// which names the option out of range and its value, without starting one.
func Start(opts *Options) (*Loop, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := newLoop(0, opts.withDefaults(), nil)
	l.start()
	return l, nil
}

func newLoop(id int, opts Options, g *Group) *Loop {
	m, _ := sm.NewEventloop(sm.DefaultEventloopOptions())
	return &Loop{
		id: id, opts: opts, m: m, group: g,
		started: make(chan struct{}),
		done:    make(chan struct{}),
		events:  make([]PollEvent, 256),
		readBuf: make([]byte, opts.ReadBufferSize),
		iov:     make([][]byte, 0, sockets.MaxIovecs),
		ring:    newStepRing(opts),
	}
}

func (l *Loop) start() {
	go l.run()
	<-l.started
}

// Counters returns the loop's counters.
func (l *Loop) Counters() *Counters { return &l.counters }

// Done is closed when the loop has stopped.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Wait blocks until the loop has stopped and returns its cause: nil after a
// clean shutdown, ErrLoopFailed wrapping the cause after the abnormal path.
func (l *Loop) Wait() error {
	<-l.done
	return l.stopErr
}

// run is the loop goroutine. It only ever returns once the machine is stopped.
func (l *Loop) run() {
	// The loop holds its lock while it works; it stays held once the loop has
	// stopped, so that no step is taken off the loop after that.
	l.turn.Lock()
	p, err := l.opts.NewPoller()
	l.mu.Lock()
	l.poller = p
	l.mu.Unlock()
	l.inline = err == nil && concurrentControl(p)
	if l.inline {
		l.parker, _ = p.(parkingPoller)
	}
	out := sm.PollerControlResultOk
	if err != nil {
		out = sockets.ClassifyPollerControl(err)
		if out == sm.PollerControlResultOk {
			out = sm.PollerControlResultOtherError
		}
	}
	l.feed(loopEvent{ev: sm.EventloopEventStarted, out: uint8(out), cause: err})
	// New and NewGroup return once the machine has heard started: what the
	// loop does before its first wait happens before they return, never beside
	// the caller's next call.
	close(l.started)
	for !l.m.Terminal() {
		if !l.waitNext {
			// A runtime fault abandoned the action list before poll. The abnormal
			// path (failing) closes every channel at once and stops; until it has,
			// keep polling so that timers and requests still arrive.
			l.fault(fmt.Errorf("loop: no poll after %v", l.m.State()))
			if l.m.Terminal() {
				break
			}
			l.waitNext = true
		}
		l.waitNext = false
		d := l.timeout()
		parking := l.parker != nil && l.conns > 0
		if l.parker != nil {
			l.parker.setParking(parking)
		}
		l.turn.Unlock()
		if parking && d != 0 {
			// Let the Conn goroutines this turn woke run before the next
			// poll, as the runtime runs what is runnable before it polls.
			runtime.Gosched()
		}
		n, err := l.poller.Wait(l.events, d)
		l.turn.Lock()
		l.lastReady = n
		if l.tracing() {
			r := traceRegion(regionWakeup, "")
			l.feed(loopEvent{ev: sm.EventloopEventWakeup, out: uint8(sockets.ClassifyPollerWait(n, err)), cause: err})
			r.End()
		} else {
			l.feed(loopEvent{ev: sm.EventloopEventWakeup, out: uint8(sockets.ClassifyPollerWait(n, err)), cause: err})
		}
	}
	if l.reported {
		close(l.done)
	}
}

// parkingPoller is a Poller that can park the waiting goroutine in the Go
// runtime's poller rather than block its thread (epoller.setParking).
type parkingPoller interface{ setParking(on bool) }

// socketOptions are the options of the sockets the loop opens (Dial, Serve):
// package sockets' defaults, TCP_NODELAY and SO_REUSEADDR on as package net
// has them, with the loop's Syscalls.
func (l *Loop) socketOptions() *sockets.Options {
	o := sockets.DefaultOptions()
	o.Syscalls = l.opts.Syscalls
	return o
}

// timeout is how long the poller may wait: until the next timer, not at all when
// work is queued, or forever.
func (l *Loop) timeout() time.Duration {
	if l.inboxLen.Load() > 0 || len(l.tasks) > 0 || len(l.ev.queue) > 0 {
		return 0
	}
	if t := l.timers.next(); t != nil {
		d := t.when.Sub(l.opts.Clock.Now())
		if d < 0 {
			d = 0
		}
		return d
	}
	return -1
}

// fault feeds a runtime fault (a panic in the runtime itself, or a re-raised
// handler panic) to the loop's machine: the abnormal path.
func (l *Loop) fault(err error) {
	l.feed(loopEvent{ev: sm.EventloopEventRuntimeFault, cause: err})
}

// feed delivers an event to the loop's machine, or queues it when actions are
// being performed; queued events follow in order.
func (l *Loop) feed(e loopEvent) {
	l.ev.fire(e, func(e loopEvent) error { l.step(e); return nil })
}

// step fires one event and performs the actions; a panic in the runtime while
// performing them is the runtime fault of the abnormal path.
func (l *Loop) step(e loopEvent) {
	defer func() {
		if r := recover(); r != nil {
			l.ev.raise(loopEvent{ev: sm.EventloopEventRuntimeFault, cause: runtimeFault(r)})
		}
	}()
	if e.ev == sm.EventloopEventChannelClosed && l.registered.Load() == 0 && !l.ev.queued(isChannelClosed) {
		// Whether it was the last is decided when the table hears it, not when
		// the registration left: one admitted in between (its registerChannel
		// was queued ahead) is open, and a later leave still to be heard is
		// the last one.
		e.ev = sm.EventloopEventLastChannelClosed
	}
	if l.tracing() {
		defer traceRegion(regionEventloop, eventloopStep(e)).End()
	}
	from := l.m.State()
	acts, err := l.m.Fire(e.ev, e.out)
	if r := l.ring; r != nil {
		r.eventloop(l, from, e, acts, err)
	}
	if l.opts.Trace != nil {
		l.trace("eventloop", uint64(l.id), from.String(), l.m.State().String(), eventloopStep(e), actionNames(acts.Len(), acts.At), err != nil)
	}
	if err != nil {
		l.counters.Rejected.Add(1)
		l.rejected(e, err)
		return
	}
	l.current = e
	acts.PerformOn(loopPerformer{l})
}

// runtimeFault is the cause of the runtime fault a panic recovered from a
// step becomes. A crash policy's diagnostic is raised again: it stops the
// process.
func runtimeFault(r any) error {
	if c, ok := r.(crashPanic); ok {
		panic(c)
	}
	if pe, ok := r.(*panicError); ok {
		return pe
	}
	return fmt.Errorf("loop: runtime fault: %v\n%s", r, debug.Stack())
}

// rejected answers a request the table refused: its sender gets the error.
func (l *Loop) rejected(e loopEvent, err error) {
	cause := fmt.Errorf("%w (%v)", ErrClosed, err)
	switch e.ev {
	case sm.EventloopEventSubmitTask:
		if e.req.task.fail != nil {
			e.req.task.fail(cause)
		}
	case sm.EventloopEventRegisterChannel:
		e.req.reg.refused(cause)
	}
}

// loopPerformer performs the loop machine's actions: sm.EventloopPerformer,
// one method per action, so a table action without a performer does not build.
type loopPerformer struct{ *Loop }

var _ sm.EventloopPerformer = loopPerformer{}

func (l loopPerformer) StartPolling()  { l.waitNext = true }
func (l loopPerformer) Poll()          { l.waitNext = true }
func (l loopPerformer) DispatchReady() { l.dispatchReady() }
func (l loopPerformer) AdmitChannel()  { l.admit(l.current.req.reg) }
func (l loopPerformer) EnqueueTask()   { l.tasks = append(l.tasks, l.current.req.task) }

func (l loopPerformer) DrainChannels() {
	l.eachRegistration(func(r *registration) { r.drain() })
}

func (l loopPerformer) StartDrainTimer() {
	l.drain = l.after(l.opts.DrainTimeout, func() { l.feed(loopEvent{ev: sm.EventloopEventDrainDeadline}) })
}

func (l loopPerformer) CancelDrainTimer() {
	l.cancel(l.drain)
	l.drain = nil
}

func (l loopPerformer) ForceCloseChannels() {
	l.forced = true
	l.eachRegistration(func(r *registration) { r.forcedShutdown() })
}

func (l loopPerformer) FailChannels() {
	l.eachRegistration(func(r *registration) { r.loopFailed() })
}

func (l loopPerformer) RecordCause() {
	if l.cause == nil {
		l.cause = l.current.cause
		if l.cause == nil {
			l.cause = fmt.Errorf("loop: %s", eventloopStep(l.current))
		}
	} else if l.current.cause != nil {
		l.cause = fmt.Errorf("%w; then: %v", l.cause, l.current.cause)
	}
}

func (l loopPerformer) FailPendingTasks() {
	l.mu.Lock()
	l.refuse = true
	inbox := l.inbox
	l.inbox = nil
	l.inboxLen.Store(0)
	l.mu.Unlock()
	err := ErrClosed
	if l.cause != nil {
		err = fmt.Errorf("%w: %w", ErrClosed, l.cause)
	}
	for _, t := range l.tasks {
		if t.fail != nil {
			t.fail(err)
		}
	}
	l.tasks = nil
	for _, r := range inbox {
		r.fail(err)
	}
	l.timers = nil
}

func (l loopPerformer) ClosePoller()  { l.poller.Close() }
func (l loopPerformer) ForgetPoller() { l.poller.Forget() }

// ReportStopped sets the loop's result; run closes done when the events
// still queued behind stopped have been heard (the table ignores them), so
// that nothing of the loop's, a Trace call included, comes after Wait or
// Shutdown returns.
func (l loopPerformer) ReportStopped() {
	if l.cause != nil {
		l.stopErr = fmt.Errorf("%w: %w", ErrLoopFailed, l.cause)
	}
	l.reported = true
}

// inReadBuf reports whether p is a slice of the loop's read buffer, as OnRead's
// is (ending anywhere, its capacity reaches the buffer's end). A slice cut with a
// capacity of its own is not recognised, and is copied at once.
func (l *Loop) inReadBuf(p []byte) bool {
	if cap(p) == 0 || len(l.readBuf) == 0 {
		return false
	}
	return &p[:cap(p)][cap(p)-1] == &l.readBuf[len(l.readBuf)-1]
}

// settleLenders copies the unwritten bytes that queued writes borrow from the
// read buffer, before a read overwrites it.
func (l *Loop) settleLenders() {
	for i, c := range l.lenders {
		c.settleBorrowed()
		l.lenders[i] = nil
	}
	l.lenders = l.lenders[:0]
}

// fail reports that a request will never be carried out.
func (r request) fail(err error) {
	switch r.kind {
	case reqTask:
		if r.task.fail != nil {
			r.task.fail(err)
		}
	case reqRegister:
		r.reg.refused(err)
	}
}

// dispatchReady hands the poller's events to their machines, then runs due
// timers, then takes the requests of other goroutines, then runs up to a budget
// of tasks. The budget keeps a flood of tasks from starving I/O.
func (l *Loop) dispatchReady() {
	n := l.lastReady
	l.lastReady = 0
	// Touch each ready registration, its channel's machine and its descriptor
	// before dispatching any. These loads are independent of one another, so
	// their cache misses (with hundreds of connections every one is cold)
	// overlap, instead of coming one at a time in the dispatch below. The
	// dispatch looks every registration up again: an earlier event's actions
	// may end a later one's registration.
	sink := 0
	for i := 0; i < n && n > 1; i++ {
		if r := l.lookup(l.events[i].Token); r != nil {
			sink += r.fd.Fd()
			if r.ch != nil {
				sink += int(r.ch.m.State())
			}
		}
	}
	l.touched = sink
	for i := 0; i < n; i++ {
		ev := l.events[i]
		r := l.lookup(ev.Token)
		if r == nil {
			l.counters.StaleEvents.Add(1)
			continue
		}
		r.ready(ev)
	}
	if l.timers.next() != nil {
		now := l.opts.Clock.Now()
		for {
			t := l.timers.next()
			if t == nil || t.when.After(now) {
				break
			}
			l.timers.pop()
			t.fire()
		}
	}
	if l.inboxLen.Load() > 0 {
		l.takeInbox()
	}
	if len(l.tasks) == 0 {
		return
	}
	// Run up to the budget of tasks; keep the rest, front first, in the same array.
	run := min(l.opts.TaskBudget, len(l.tasks))
	for i := 0; i < run; i++ {
		l.tasks[i].run()
	}
	rest := copy(l.tasks, l.tasks[run:])
	clear(l.tasks[rest:])
	l.tasks = l.tasks[:rest]
}

// takeInbox turns the requests of other goroutines into the loop machine's
// events. It swaps the inbox with the spare one: both arrays are reused.
func (l *Loop) takeInbox() {
	l.mu.Lock()
	inbox := l.inbox
	l.inbox = l.spare[:0]
	l.inboxLen.Store(0)
	l.mu.Unlock()
	defer func() { clear(inbox); l.spare = inbox[:0] }()
	for _, r := range inbox {
		switch r.kind {
		case reqTask:
			l.ev.raise(loopEvent{ev: sm.EventloopEventSubmitTask, req: r})
		case reqRegister:
			l.ev.raise(loopEvent{ev: sm.EventloopEventRegisterChannel, req: r})
		case reqShutdownGracefully:
			l.ev.raise(loopEvent{ev: sm.EventloopEventShutdownGracefully})
		case reqShutdownNow:
			l.ev.raise(loopEvent{ev: sm.EventloopEventShutdownNow})
		}
	}
}

// submit hands a request to the loop goroutine.
func (l *Loop) submit(r request) error {
	l.mu.Lock()
	if l.refuse {
		l.mu.Unlock()
		return ErrClosed
	}
	l.inbox = append(l.inbox, r)
	l.inboxLen.Store(int32(len(l.inbox)))
	p := l.poller
	l.mu.Unlock()
	if p != nil {
		p.Wake()
	}
	return nil
}

// Execute runs fn on the loop goroutine. It returns ErrClosed if the loop is
// shutting down or stopped; fn may also never run if the loop stops first.
func (l *Loop) Execute(fn func()) error {
	return l.submit(request{kind: reqTask, task: task{run: fn}})
}

// Submit runs fn on the loop goroutine and delivers its result, or the loop's
// error if it stops before fn runs, on the returned channel (buffered, one value).
func (l *Loop) Submit(fn func() error) <-chan error {
	res := make(chan error, 1)
	err := l.submit(request{kind: reqTask, task: task{
		run:  func() { res <- fn() },
		fail: func(err error) { res <- err },
	}})
	if err != nil {
		res <- err
	}
	return res
}

// Shutdown stops the loop gracefully: no new registrations, and each channel
// closes once every write accepted before the Shutdown went out. When ctx ends
// or DrainTimeout passes first, the close is forced: the writes still pending
// fail, with an error wrapping ErrClosed and ErrForced. Shutdown returns nil
// only when everything drained; after a forced close, an error wrapping
// ErrForced and ctx.Err() or, for DrainTimeout, context.DeadlineExceeded; the
// loop's cause (see Wait) when it failed.
func (l *Loop) Shutdown(ctx context.Context) error {
	if l.submit(request{kind: reqShutdownGracefully}) == nil {
		select {
		case <-l.done:
		case <-ctx.Done():
			l.submit(request{kind: reqShutdownNow})
			<-l.done
		}
	} else {
		<-l.done
	}
	return l.shutdownResult(ctx)
}

// shutdownResult is what Shutdown returns once the loop has stopped.
func (l *Loop) shutdownResult(ctx context.Context) error {
	if l.stopErr != nil {
		return l.stopErr
	}
	if !l.forced {
		return nil
	}
	cause := ctx.Err()
	if cause == nil {
		cause = context.DeadlineExceeded // DrainTimeout passed, or Close forced it
	}
	return fmt.Errorf("%w: %w", ErrForced, cause)
}

// Close stops the loop at once: every channel closes and its pending writes
// fail. It waits for the loop to stop and returns its cause.
func (l *Loop) Close() error {
	l.submit(request{kind: reqShutdownNow})
	return l.Wait()
}

// trace records a step for Options.Trace.
func (l *Loop) trace(machine string, id uint64, from, to, event string, acts []string, rejected bool) {
	l.opts.Trace(Step{Machine: machine, ID: id, From: from, To: to, Event: event, Actions: acts, Rejected: rejected})
}

func eventloopStep(e loopEvent) string {
	return stepName(e.ev.String(), e.ev.OutcomeString(e.out))
}

// stepName renders an event with its outcome, if it has one, as traces and
// recordings write it: read(wouldBlock). Which outcome type an event carries
// is said once, by the generated OutcomeString.
func stepName(event, outcome string) string {
	if outcome == "" {
		return event
	}
	return event + "(" + outcome + ")"
}

// actionNames renders a machine's returned actions for a trace.
func actionNames[S fmt.Stringer](n int, at func(int) S) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = at(i).String()
	}
	return out
}

func isChannelClosed(e loopEvent) bool { return e.ev == sm.EventloopEventChannelClosed }
