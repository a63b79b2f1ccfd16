package loop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"runtime/trace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// Handler receives a channel's callbacks, on its loop, one at a time.
type Handler interface {
	// OnActive: the channel is connected and registered.
	OnActive(c *Channel)
	// OnRead: bytes arrived; p is valid only during the call.
	OnRead(c *Channel, p []byte)
	// OnReadComplete: the read cycle that delivered the preceding OnReads ended.
	OnReadComplete(c *Channel)
	// OnWritabilityChanged: queued bytes crossed a watermark.
	OnWritabilityChanged(c *Channel, writable bool)
	// OnInputClosed: the peer closed its side (half-closure allowed).
	OnInputClosed(c *Channel)
	// OnError: the error that is about to close the channel.
	OnError(c *Channel, err error)
	// OnInactive: the channel, once active, is closed.
	OnInactive(c *Channel)
}

// NopHandler implements Handler doing nothing; embed it to implement a few.
type NopHandler struct{}

func (NopHandler) OnActive(*Channel)                   {}
func (NopHandler) OnRead(*Channel, []byte)             {}
func (NopHandler) OnReadComplete(*Channel)             {}
func (NopHandler) OnWritabilityChanged(*Channel, bool) {}
func (NopHandler) OnInputClosed(*Channel)              {}
func (NopHandler) OnError(*Channel, error)             {}
func (NopHandler) OnInactive(*Channel)                 {}

// ChannelOptions set the variables of a channel's table and its watermarks.
type ChannelOptions struct {
	// AutoRead keeps reading whenever possible (default true); without it each
	// Read call allows one read cycle.
	AutoRead *bool
	// HalfClosure keeps the channel open for writing after the peer's EOF.
	HalfClosure bool
	// NoBackpressure keeps reading while the output is above the high watermark.
	NoBackpressure bool
	// CrashOnInvalidDescriptor panics on EBADF instead of containing it (D2).
	CrashOnInvalidDescriptor bool
	// RepanicHandlerPanics re-raises handler panics on the loop, which then
	// fails, instead of failing only the channel.
	RepanicHandlerPanics bool
	// HighWatermark and LowWatermark bound the queued output: above the high
	// one the channel turns unwritable (and stops reading, unless
	// NoBackpressure), at or below the low one writable again. 0 means the
	// default: 1 MiB for HighWatermark, half the high one for LowWatermark.
	// LowWatermark must be below HighWatermark, the default one when
	// HighWatermark is 0; neither may be negative.
	HighWatermark, LowWatermark int
	// ConnectTimeout bounds a dial; 0 means 30 s. It may not be negative.
	ConnectTimeout time.Duration
	// IdleTimeout, if positive, closes the channel once nothing was read from
	// or written to its socket for that long. Its close error wraps
	// ErrIdleTimeout; pending writes fail with it.
	IdleTimeout time.Duration
	// WriteTimeout, if positive, fails the channel and its pending writes once
	// flushed bytes have waited that long with none taken by the peer (counted
	// from when they began to wait, or from the last byte the peer took). Its
	// error wraps ErrWriteTimeout.
	WriteTimeout time.Duration
}

// ErrIdleTimeout and ErrWriteTimeout are wrapped by the errors a channel's
// IdleTimeout and WriteTimeout close it with. Those errors also match
// os.ErrDeadlineExceeded with errors.Is, and are net.Errors whose Timeout is
// true, as net's own timeouts are.
var (
	ErrIdleTimeout  = errors.New("idle timeout")
	ErrWriteTimeout = errors.New("write timeout")
)

// timeoutError is a channel's idle or write timeout.
type timeoutError struct {
	kind error // ErrIdleTimeout or ErrWriteTimeout
	d    time.Duration
	id   uint64
}

func (e *timeoutError) Error() string {
	what := "nothing read or written"
	if e.kind == ErrWriteTimeout {
		what = "the peer took none of the pending output"
	}
	return fmt.Sprintf("loop: channel %d: %v: %s for %v", e.id, e.kind, what, e.d)
}

func (e *timeoutError) Is(target error) bool {
	return target == e.kind || target == os.ErrDeadlineExceeded
}

func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return false }

// The defaults of the channel options left 0.
const (
	defaultHighWatermark  = 1 << 20
	defaultConnectTimeout = 30 * time.Second
)

// Validate reports the first option out of range: a negative watermark,
// ConnectTimeout, IdleTimeout or WriteTimeout, or a LowWatermark that is not below the HighWatermark in
// force. A nil *ChannelOptions is valid. Dial, Register and the channels of
// an Accepted callback refuse invalid options with this error.
func (o *ChannelOptions) Validate() error {
	if o == nil {
		return nil
	}
	switch {
	case o.HighWatermark < 0:
		return fmt.Errorf("loop: ChannelOptions.HighWatermark %d is negative", o.HighWatermark)
	case o.LowWatermark < 0:
		return fmt.Errorf("loop: ChannelOptions.LowWatermark %d is negative", o.LowWatermark)
	case o.ConnectTimeout < 0:
		return fmt.Errorf("loop: ChannelOptions.ConnectTimeout %v is negative", o.ConnectTimeout)
	case o.IdleTimeout < 0:
		return fmt.Errorf("loop: ChannelOptions.IdleTimeout %v is negative", o.IdleTimeout)
	case o.WriteTimeout < 0:
		return fmt.Errorf("loop: ChannelOptions.WriteTimeout %v is negative", o.WriteTimeout)
	case o.HighWatermark == 0 && o.LowWatermark >= defaultHighWatermark:
		return fmt.Errorf("loop: ChannelOptions.LowWatermark %d is not below the default HighWatermark %d", o.LowWatermark, defaultHighWatermark)
	case o.HighWatermark > 0 && o.LowWatermark >= o.HighWatermark:
		return fmt.Errorf("loop: ChannelOptions.LowWatermark %d is not below HighWatermark %d", o.LowWatermark, o.HighWatermark)
	}
	return nil
}

func (o *ChannelOptions) machine(dialed bool) sm.ChannelOptions {
	opts := sm.DefaultChannelOptions()
	if dialed {
		opts.Origin = sm.ChannelOriginDialed
	}
	if o == nil {
		return opts
	}
	if o.AutoRead != nil {
		opts.AutoRead = *o.AutoRead
	}
	opts.HalfClosure = o.HalfClosure
	opts.Backpressure = !o.NoBackpressure
	if o.CrashOnInvalidDescriptor {
		opts.EbadfPolicy = sm.ChannelEbadfPolicyCrash
	}
	if o.RepanicHandlerPanics {
		opts.PanicPolicy = sm.ChannelPanicPolicyRepanic
	}
	return opts
}

// Channel is one stream connection (TCP, Unix or vsock) on a loop.
type Channel struct {
	// Loop-goroutine state of reads and writes comes first, with the storage
	// its queues start in: with many connections an echo finds its channel out
	// of the CPU's caches, and each cache line it touches costs a miss.
	loop        *Loop
	reg         registration
	m           sm.Channel
	handlerDead bool
	lent        bool   // queued writes borrow the loop's read buffer (SendCopy)
	writeSeq    uint32 // the last write record's seq
	handler     Handler
	events      events[chEvent]
	current     chEvent
	cause       error
	out         []write
	finished    []write // scratch of completeWrites
	lastRead    int
	reads       int // reads in this wakeup, for the read budget
	queued      int // bytes queued and not written
	written     int // bytes of the last writev
	high, low   int // the watermarks, from opts
	eventsBuf   [3]chEvent
	outBuf      [1]write
	finishedBuf [1]write

	id       uint64
	opts     ChannelOptions
	raddr    net.Addr // the peer: dialed, or learnt at registration
	dialed   func(error)
	connectT *timer
	// The one timer of the timeouts (startTimer), its callback bound once, and
	// the times it measures from: the last byte read or written, and when the
	// pending output last began to wait or moved. Kept only when a timeout is set.
	timeoutT     *timer
	timeoutFn    func()
	lastActive   time.Time
	lastProgress time.Time

	conn     bool // a Conn's: the loop parks while it serves one (Loop.conns)
	closedCh chan struct{}
	closeErr error
	closing  atomic.Bool

	// Writes from any goroutine wait in the inbox until the loop takes them,
	// which it does before anything else it does on the channel: right after
	// the callback they were written from, or before the channel's next event,
	// or when the flush task asks. Records leave the inbox only under wmu, so
	// each is taken, or failed, once.
	wmu        sync.Mutex
	inbox      []write
	spareIn    []write
	inboxN     atomic.Int32 // len(inbox), read without wmu
	nudged     bool         // under wmu: flushTask is submitted and has not taken the inbox
	wclosed    error        // under wmu: the channel ended; a Write fails at once with it
	inCb       atomic.Bool  // the loop is inside one of this channel's callbacks
	flushTask  task
	readTask   task // Read's, bound once so that asking for a cycle allocates nothing
	pauseTask  task // PauseReading's and ResumeReading's, bound once
	resumeTask task
}

// write is one queued write. Records are kept by value in the channel's queue,
// whose array is reused, so queueing a write does not allocate.
type write struct {
	p    []byte
	off  int
	done func(error)
	seq  uint32 // the writeQueued event that asks the table for it carries seq
	// awaiting: the table has not yet answered its writeQueued. Such records
	// are the tail of the queue (events are answered in order) and are not
	// written; refused, the record leaves the queue and its write fails.
	awaiting bool
	// borrowed: p is the caller's, only for the duration of SendCopy.
	borrowed bool
}

// chEvent is an event for a channel's machine with what caused it.
type chEvent struct {
	ev    sm.ChannelEvent
	out   uint8
	seq   uint32 // writeQueued: the write it asks for
	cause error
}

var channelIDs atomic.Uint64

// newChannel creates the channel of fd with options that Validate accepted:
// their 0 fields take the defaults.
func newChannel(fd *sockets.FD, h Handler, o *ChannelOptions, dialed bool) *Channel {
	c := &Channel{id: channelIDs.Add(1), handler: h, closedCh: make(chan struct{})}
	_, c.conn = h.(connHandler)
	if o != nil {
		c.opts = *o
	}
	if c.opts.HighWatermark == 0 {
		c.opts.HighWatermark = defaultHighWatermark
	}
	if c.opts.LowWatermark == 0 {
		c.opts.LowWatermark = c.opts.HighWatermark / 2
	}
	if c.opts.ConnectTimeout == 0 {
		c.opts.ConnectTimeout = defaultConnectTimeout
	}
	c.high, c.low = c.opts.HighWatermark, c.opts.LowWatermark
	c.m, _ = sm.NewChannel(o.machine(dialed))
	c.reg = registration{fd: fd, ch: c}
	c.events.queue = c.eventsBuf[:0]
	c.out = c.outBuf[:0]
	c.finished = c.finishedBuf[:0]
	c.flushTask = task{run: c.takeWrites, fail: c.failInbox}
	c.readTask = task{run: c.requestRead}
	c.pauseTask = task{run: c.pauseRead}
	c.resumeTask = task{run: c.resumeRead}
	return c
}

// Register hands an owned descriptor (from package sockets: accepted, adopted or
// dialed and connected) to the loop as a channel driven by h. Options that
// Validate refuses are its error, and fd is closed.
func (l *Loop) Register(fd *sockets.FD, h Handler, o *ChannelOptions) (*Channel, error) {
	return l.registerPeer(fd, nil, h, o)
}

// registerPeer registers an accepted or adopted descriptor. The peer's address
// is learnt now, once: after an EBADF no syscall may touch the number (D2), so
// errors must not look it up then.
func (l *Loop) registerPeer(fd *sockets.FD, peer net.Addr, h Handler, o *ChannelOptions) (*Channel, error) {
	bad := o.Validate()
	if bad != nil {
		o = nil // the channel only closes: its table, with the defaults, does it
	}
	c := newChannel(fd, h, o, false)
	c.loop = l
	if bad != nil {
		c.reg.refused(bad) // fresh on close: closeFD, settleClosed
		return nil, bad
	}
	c.raddr = peer
	if c.raddr == nil {
		c.raddr, _ = fd.RemoteAddr()
	}
	if err := l.register(&c.reg); err != nil {
		c.reg.refused(err) // the table closes the descriptor (fresh on close)
		return nil, err
	}
	return c, nil
}

// Dial connects to addr on the loop; connected reports the outcome once, nil on
// success (OnActive follows it). Options that Validate refuses are its error,
// before any socket is made.
func (l *Loop) Dial(addr net.Addr, h Handler, o *ChannelOptions, connected func(error)) (*Channel, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	fd, err := sockets.Open(addr, l.socketOptions())
	if err != nil {
		return nil, err
	}
	c := newChannel(fd, h, o, true)
	c.loop = l
	c.raddr = addr
	c.dialed = connected
	if err := l.register(&c.reg); err != nil {
		// The error is the answer: connected is not called (the table's
		// failConnect, closing from fresh, finds no dial to answer).
		c.dialed = nil
		c.reg.refused(err) // the table closes the descriptor (fresh on close)
		return nil, err
	}
	return c, nil
}

// ID returns the channel's id, unique in the process.
func (c *Channel) ID() uint64 { return c.id }

// Loop returns the channel's loop.
func (c *Channel) Loop() *Loop { return c.loop }

// Closed is closed when the channel is closed; Err then returns why.
func (c *Channel) Closed() <-chan struct{} { return c.closedCh }

// Err returns the channel's close cause once Closed is closed: nil for a clean
// close.
func (c *Channel) Err() error {
	select {
	case <-c.closedCh:
		return c.closeErr
	default:
		return nil
	}
}

// LocalAddr and RemoteAddr return the socket's addresses, or nil. LocalAddr asks
// the kernel; RemoteAddr was learnt when the channel was created.
func (c *Channel) LocalAddr() net.Addr {
	if c.reg.fd.Closed() {
		return nil
	}
	a, _ := c.reg.fd.LocalAddr()
	return a
}

func (c *Channel) RemoteAddr() net.Addr { return c.raddr }

// Write queues p (which the channel keeps until written) and flushes it. Safe
// from any goroutine; from the channel's own callbacks it is ordered exactly
// like Send: before anything the loop does next on the channel, the read that
// finds the peer's EOF included. Writes from one goroutine keep their order.
//
// p's bytes count against the channel's watermarks before the loop takes any
// other decision on the channel, wherever they wait. done, if not nil, is
// called exactly once: on the loop, nil once every byte is written, or the
// error that failed the write; or, when the channel has already ended, before
// Write returns, with that end's error.
func (c *Channel) Write(p []byte, done func(error)) {
	c.wmu.Lock()
	if err := c.wclosed; err != nil {
		c.wmu.Unlock()
		if done != nil {
			done(err)
		}
		return
	}
	c.inbox = append(c.inbox, write{p: p, done: done})
	c.inboxN.Store(int32(len(c.inbox)))
	// Inside one of this channel's callbacks the loop takes the inbox when the
	// callback returns: inCb is read after the record is published, and the
	// loop reads inboxN after clearing inCb, so one of the two sees the other.
	nudge := !c.nudged && !c.inCb.Load()
	if nudge {
		c.nudged = true
	}
	c.wmu.Unlock()
	if nudge {
		if err := c.loop.submit(request{kind: reqTask, task: c.flushTask}); err != nil {
			c.failInbox(err)
		}
	}
}

// takeWrites moves the inbox into the output queue, each record asking the
// table with writeQueued. Inside a step the events wait their turn behind the
// events already raised, as Send's do; outside one they are fed at once.
func (c *Channel) takeWrites() {
	in := c.swapInbox()
	for i := range in {
		c.events.raise(chEvent{ev: sm.ChannelEventWriteQueued, seq: c.queueTaken(in[i])})
	}
	c.releaseInbox(in)
	if !c.events.busy {
		if c.loop.opts.TraceRegions {
			c.events.run(c.tracedStep)
		} else {
			c.events.run(c.step)
		}
	}
}

// swapInbox takes the inbox's records, leaving the spare array in its place.
func (c *Channel) swapInbox() []write {
	c.wmu.Lock()
	in := c.inbox
	c.inbox, c.spareIn = c.spareIn[:0], nil
	c.inboxN.Store(0)
	c.nudged = false
	c.wmu.Unlock()
	return in
}

// releaseInbox keeps a taken array as the spare, unless a nested take already
// left one.
func (c *Channel) releaseInbox(in []write) {
	clear(in)
	if c.spareIn == nil {
		c.spareIn = in[:0]
	}
}

// queueTaken appends a record taken from the inbox to the output queue,
// awaiting the table's answer, and returns its seq.
func (c *Channel) queueTaken(w write) uint32 {
	c.writeSeq++
	w.seq, w.awaiting = c.writeSeq, true
	c.out = append(c.out, w)
	return c.writeSeq
}

// failInbox fails the writes waiting in the inbox, and every later Write,
// with err: the loop refused the flush task, so it will never take them. It
// runs on the writer's goroutine, so it calls each done directly, with nothing
// of the loop's: a panic there is counted and goes no further.
func (c *Channel) failInbox(err error) {
	for _, w := range c.endInbox(err) {
		if w.done != nil {
			c.failOffLoop(w.done, err)
		}
	}
}

// failOffLoop calls done(err) away from the loop, containing a panic.
func (c *Channel) failOffLoop(done func(error), err error) {
	defer func() {
		if r := recover(); r != nil {
			c.loop.counters.PanicsContained.Add(1)
		}
	}()
	done(err)
}

// closeInbox ends the inbox with the channel, on the loop: the writes waiting
// there fail with err, as every later Write does at once.
func (c *Channel) closeInbox(err error) {
	for _, w := range c.endInbox(err) {
		if w.done != nil {
			c.complete(w.done, err)
		}
	}
}

// endInbox makes every later Write fail at once (with the first error it is
// given) and returns the records still waiting, which its caller fails.
func (c *Channel) endInbox(err error) []write {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed == nil {
		c.wclosed = err
	}
	in := c.inbox
	c.inbox = nil
	c.inboxN.Store(0)
	c.nudged = false
	return in
}

// Send is Write for the channel's own handler callbacks, which run on its loop:
// it queues p and flushes at once, without going through the loop's task queue.
// Calling it from any other goroutine is a data race; use Write there.
func (c *Channel) Send(p []byte, done func(error)) {
	c.enqueue(p, done, false)
}

// SendCopy is Send for a buffer the caller reuses: the caller may change p as
// soon as SendCopy returns, with one exception that makes echoes free. Only what
// is still unwritten when p could change is copied, into a buffer of the
// channel's own. For any buffer but OnRead's, that is when SendCopy returns. A
// slice of OnRead's buffer is borrowed until the loop next reads into it (by
// then the write, queued behind the callback, has usually gone out whole), so
// the handler must not write into that buffer after passing it to SendCopy. An
// echo that the kernel takes whole thus neither copies nor allocates. Loop
// goroutine only, as Send.
func (c *Channel) SendCopy(p []byte, done func(error)) {
	c.enqueue(p, done, true)
	if c.lent {
		return // already on the loop's list, to settle before the next read
	}
	for i := range c.out {
		if c.out[i].borrowed {
			if c.loop.inReadBuf(p) {
				c.lent = true
				c.loop.lenders = append(c.loop.lenders, c)
			} else {
				c.settleBorrowed()
			}
			return
		}
	}
}

// settleBorrowed copies what is left of every borrowed write into the channel's
// own buffers.
func (c *Channel) settleBorrowed() {
	for i := range c.out {
		if w := &c.out[i]; w.borrowed {
			w.p = append([]byte(nil), w.p[w.off:]...)
			w.off, w.borrowed = 0, false
		}
	}
	c.lent = false
}

// beginInline takes the loop's lock for a step of one of the loop's channels on
// the caller's goroutine: only while the loop waits in its poller (turn is
// free) and only when that poller takes interest changes during a wait. The
// step is the loop's own (the same event, table and performer); what it raises
// for the loop's table waits for the loop, since the loop's actions (closing
// the poller, among them) belong beside no Wait: endInline wakes the loop to
// hear them. Only a Conn steps its channel this way: a Handler's callbacks
// keep running on the loop goroutine.
func (l *Loop) beginInline() bool {
	if !l.inline || !l.turn.TryLock() {
		return false
	}
	l.ev.busy = true // the loop's events queue, for its next wakeup
	l.inlineHead = l.timers.next()
	return true
}

// endInline ends a step begun by beginInline; r is what the step's deferred
// recover returned. A panic of the runtime is the loop's runtime fault, as on
// the loop. The loop is woken when its table has events to hear or its next
// timer changed: its wait was computed without them.
func (l *Loop) endInline(r any) {
	if r != nil {
		if _, crash := r.(crashPanic); crash {
			l.ev.busy = false
			l.turn.Unlock()
			panic(r)
		}
		l.ev.raise(loopEvent{ev: sm.EventloopEventRuntimeFault, cause: runtimeFault(r)})
	}
	l.ev.busy = false
	wake := len(l.ev.queue) > 0 || l.timers.next() != l.inlineHead
	l.inlineHead = nil
	p := l.poller
	l.turn.Unlock()
	if wake {
		p.Wake()
	}
}

// writeInline is Write taken as a step on the caller's goroutine, when
// beginInline allows it; it reports whether it did. The record is queued as
// SendCopy queues it, behind the writes waiting in the inbox, so done may run
// before writeInline returns, on the caller's goroutine: p is written from
// where it is, and only what the step left unwritten is copied, before
// writeInline returns. For a Conn only.
//
// Once begun, the step is taken: a runtime panic in it is the loop's fault,
// which fails the write held, and writeInline still reports true, so that
// the caller does not queue the write a second time.
func (c *Channel) writeInline(p []byte, done func(error)) (taken bool) {
	l := c.loop
	if !l.beginInline() {
		return false
	}
	taken = true
	defer func() {
		r := recover()
		c.settleBorrowed() // p is the caller's again
		l.endInline(r)
	}()
	c.wmu.Lock()
	err := c.wclosed
	c.wmu.Unlock()
	if err != nil {
		done(err) // as Write: the channel has ended
		return
	}
	c.enqueue(p, done, true)
	return
}

// stepInline runs step, which fires one of the channel's events, as a step
// taken on the caller's goroutine, when beginInline allows it; it reports
// whether it did. For a Conn only.
func (c *Channel) stepInline(step func()) (taken bool) {
	l := c.loop
	if !l.beginInline() {
		return false
	}
	taken = true
	defer func() { l.endInline(recover()) }()
	step()
	return
}

// Read asks for one more read cycle when AutoRead is off.
func (c *Channel) Read() {
	c.loop.submit(request{kind: reqTask, task: c.readTask})
}

// PauseReading stops an auto-reading channel's reads until ResumeReading: a
// consumer whose buffer is full pauses, and the kernel's receive window then
// pushes back on the peer. A read cycle under way ends at its next read. With
// AutoRead off it changes nothing: each Read asks for one cycle. Safe from any
// goroutine; calls take effect in the order the loop receives them.
func (c *Channel) PauseReading() {
	c.loop.submit(request{kind: reqTask, task: c.pauseTask})
}

// ResumeReading resumes the reads that PauseReading stopped (and, while
// backpressure pauses reading too, once the output falls below the low
// watermark).
func (c *Channel) ResumeReading() {
	c.loop.submit(request{kind: reqTask, task: c.resumeTask})
}

func (c *Channel) requestRead() { c.fire(chEvent{ev: sm.ChannelEventReadRequest}) }
func (c *Channel) pauseRead()   { c.fire(chEvent{ev: sm.ChannelEventPauseRead}) }
func (c *Channel) resumeRead()  { c.fire(chEvent{ev: sm.ChannelEventResumeRead}) }

// Close closes the channel: pending writes fail. Safe from any goroutine; it
// returns at once, Closed reports the end.
func (c *Channel) Close() error {
	if !c.closing.CompareAndSwap(false, true) {
		return nil
	}
	return c.loop.Execute(func() { c.fire(chEvent{ev: sm.ChannelEventClose}) })
}

// enqueue queues a write and asks the table with writeQueued. The answer may
// come later: an enqueue from a callback runs while the channel's actions are
// being performed, and its event waits its turn. step settles the record then.
func (c *Channel) enqueue(p []byte, done func(error), borrowed bool) {
	if c.inboxN.Load() != 0 {
		c.takeWrites() // Writes made before this Send go first
	}
	c.writeSeq++
	c.out = append(c.out, write{p: p, done: done, seq: c.writeSeq, awaiting: true, borrowed: borrowed})
	c.fire(chEvent{ev: sm.ChannelEventWriteQueued, seq: c.writeSeq})
}

// awaitingWrite returns the queued record that writeQueued e asks for, or nil
// when it has left the queue already (failed by failPendingWrites).
func (c *Channel) awaitingWrite(e chEvent) (int, *write) {
	for i := len(c.out) - 1; i >= 0 && c.out[i].awaiting; i-- {
		if c.out[i].seq == e.seq {
			return i, &c.out[i]
		}
	}
	return -1, nil
}

// refuseWrite fails the write whose writeQueued the table refused (the channel
// is not open for writes: not yet active, draining or closed). It is the
// ordinary race of a write against its channel's end, not a caller bug.
func (c *Channel) refuseWrite(e chEvent) {
	i, w := c.awaitingWrite(e)
	if w == nil {
		return
	}
	done := w.done
	copy(c.out[i:], c.out[i+1:])
	c.out[len(c.out)-1] = write{}
	c.out = c.out[:len(c.out)-1]
	if done != nil {
		c.complete(done, fmt.Errorf("%w: channel %d is %v and takes no new writes", net.ErrClosed, c.id, c.m.State()))
	}
}

// ready turns a poller report into the channel's events.
func (c *Channel) ready(ev PollEvent) {
	c.reads = 0
	switch {
	case ev.Hangup:
		c.fire(chEvent{ev: sm.ChannelEventHangup})
	case ev.Readable && ev.EOFHint:
		c.fire(chEvent{ev: sm.ChannelEventReadableEOFHint})
	case ev.Readable:
		c.fire(chEvent{ev: sm.ChannelEventReadable})
	}
	if ev.Writable {
		c.fire(chEvent{ev: sm.ChannelEventWritable})
	}
}

// fire delivers an event to the channel's machine, or queues it while actions are
// being performed. It returns the table's rejection of this event, if delivered
// at once.
//
// An event from outside the channel's actions (readiness, a timer, the loop, a
// user request) first lets the writes waiting in the inbox reach the table,
// with everything they cause: they were accepted before it.
func (c *Channel) fire(e chEvent) error {
	if !c.events.busy && c.inboxN.Load() != 0 {
		c.takeWrites()
	}
	if c.loop.opts.TraceRegions {
		return c.events.fire(e, c.tracedStep)
	}
	return c.events.fire(e, c.step)
}

// fireDirect delivers e at once, before the writes waiting in the inbox (the
// loop's failure is heard first). fire repeats its two lines rather than call
// it: the call is not inlined there and cost 24 instructions per echo
// (callgrind, 2094 against 2070).
func (c *Channel) fireDirect(e chEvent) error {
	if c.loop.opts.TraceRegions {
		return c.events.fire(e, c.tracedStep)
	}
	return c.events.fire(e, c.step)
}

// tracedStep is step inside a runtime/trace region while a trace runs. The
// events run it instead of step when TraceRegions is set, so that step itself
// carries no check (a deferred End in it cost about 55 instructions per echo).
func (c *Channel) tracedStep(e chEvent) error {
	if !trace.IsEnabled() {
		return c.step(e)
	}
	r := traceRegion(regionChannel, channelStep(e))
	defer r.End()
	return c.step(e)
}

func (c *Channel) step(e chEvent) error {
	var w *write
	if e.ev == sm.ChannelEventWriteQueued {
		// The write's bytes count from its call: where they leave the queue
		// is the event's outcome.
		e.out = uint8(sm.QueueLevelWithinHigh)
		if _, w = c.awaitingWrite(e); w != nil && c.queued+len(w.p) > c.high {
			e.out = uint8(sm.QueueLevelAboveHigh)
		}
	}
	if e.ev == sm.ChannelEventWrote && sm.WriteResult(e.out) == sm.WriteResultPartial && c.written == c.queued {
		// drained is decided when the table hears the result, not when the
		// writev returned: a write accepted in between was not in the writev,
		// and its bytes still wait.
		e.out = uint8(sm.WriteResultDrained)
	}
	from := c.m.State()
	acts, err := c.m.Fire(e.ev, e.out)
	if r := c.loop.ring; r != nil && c.reg.gen != 0 && r.channel(c, from, c.m.State(), e, acts, err) {
		r.channelMore(c, from, e, err)
	}
	if t := c.loop.opts.Trace; t != nil {
		c.loop.trace("channel", c.id, from.String(), c.m.State().String(), channelStep(e), actionNames(acts.Len(), acts.At), err != nil)
	}
	if err != nil {
		if e.ev == sm.ChannelEventWriteQueued {
			c.refuseWrite(e)
		} else {
			c.loop.counters.Rejected.Add(1)
		}
		return err
	}
	if e.cause != nil {
		c.cause = e.cause // the latest failure is the one that closes
	}
	c.current = e
	if w != nil {
		// Accepted: its bytes join the output before the actions write them.
		w.awaiting = false
		if c.queued == 0 && c.timeoutFn != nil {
			c.lastProgress = c.loop.opts.Clock.Now() // output begins to wait
		}
		c.queued += len(w.p)
	}
	for i := 0; i < acts.Len(); i++ {
		acts.At(i).PerformOn(chPerformer{c})
	}
	return nil
}

func channelStep(e chEvent) string {
	return stepName(e.ev.String(), e.ev.OutcomeString(e.out))
}

// callback calls a handler method, recovering a panic at this boundary: the
// handler is not called again, the rest of the action list is still performed,
// and handlerPanicked follows.
//
// Writes the callback made wait in the inbox while it runs and are taken as it
// returns, so they are ordered as Send's.
func (c *Channel) callback(fn func(h Handler)) {
	if c.handlerDead {
		return
	}
	defer func() {
		c.inCb.Store(false)
		if r := recover(); r != nil {
			c.recovered(r)
		}
		if c.inboxN.Load() != 0 {
			c.takeWrites()
		}
	}()
	c.inCb.Store(true)
	fn(c.handler)
}

// complete calls a write's done. Completions are not handler callbacks: a
// handler that panicked does not silence them, and each is recovered on its
// own, so a panic in one does not stop the others. Such a panic is user code
// of this channel failing, and fails the channel as a handler panic does.
//
// Its deferred function is callback's, written again: shared through a method
// it cost 22 more instructions per echo (callgrind, 2040 against 2062).
func (c *Channel) complete(done func(error), err error) {
	defer func() {
		c.inCb.Store(false)
		if r := recover(); r != nil {
			c.recovered(r)
		}
		if c.inboxN.Load() != 0 {
			c.takeWrites()
		}
	}()
	c.inCb.Store(true)
	done(err)
}

// recovered handles a panic recovered from user code of the channel: counted,
// and fed as handlerPanicked the first time; the handler is not called again.
func (c *Channel) recovered(r any) {
	switch p := r.(type) {
	case crashPanic:
		panic(p) // the crash policy stops the process, whoever's callback it crossed
	case *panicError:
		if p.channel != c.id {
			// Another channel's re-raised panic (its repanic policy), from a
			// step nested in this channel's callback: the loop's to handle.
			panic(p)
		}
	}
	c.loop.counters.PanicsContained.Add(1)
	if c.handlerDead {
		return
	}
	c.handlerDead = true
	err := &panicError{value: r, stack: debug.Stack(), channel: c.id}
	c.events.raise(chEvent{ev: sm.ChannelEventHandlerPanicked, cause: err})
}

// panicError is a handler panic recovered at the callback boundary.
type panicError struct {
	value   any
	stack   []byte
	channel uint64
}

func (e *panicError) Error() string {
	return fmt.Sprintf("loop: handler of channel %d panicked: %v\n%s", e.channel, e.value, e.stack)
}

// chPerformer performs the channel machine's actions: sm.ChannelPerformer, one
// method per action, so a table action without a performer does not build.
// The generated dispatch calls them through the interface: an indirect call
// per action, measured in make bench's instruction counts.
type chPerformer struct{ *Channel }

var _ sm.ChannelPerformer = chPerformer{}

// RearmRead and RearmWrite: level-triggered epoll and kqueue keep interest
// armed, so there is nothing to do.
func (chPerformer) RearmRead()  {}
func (chPerformer) RearmWrite() {}

func (c chPerformer) ReadSocket() {
	l := c.loop
	l.settleLenders() // the read buffer is about to change
	n, err := c.reg.fd.Read(l.readBuf)
	c.lastRead = n
	c.reads++
	if n > 0 && c.timeoutFn != nil {
		c.lastActive = l.opts.Clock.Now()
	}
	out := sockets.ClassifyRead(n, err)
	if out == sm.ReadResultDescriptorInvalid {
		c.reg.fd.Invalidate() // see invalidOnEBADF
	}
	if out == sm.ReadResultData && n < len(l.readBuf) {
		out = sm.ReadResultDataShort // like drained for writes: the runtime's refinement
	}
	var cause error
	switch out {
	case sm.ReadResultReset, sm.ReadResultDescriptorInvalid, sm.ReadResultOtherError:
		cause = opError("read", c.raddr, err)
	}
	c.events.raiseResult(chEvent{ev: sm.ChannelEventRead, out: uint8(out), cause: cause})
}

func (c chPerformer) DeliverRead() {
	p := c.loop.readBuf[:c.lastRead]
	c.callback(func(h Handler) { h.OnRead(c.Channel, p) })
}

func (c chPerformer) ContinueRead() {
	l := c.loop
	if c.reads < l.opts.ReadBudget {
		c.events.raise(chEvent{ev: sm.ChannelEventReadContinue})
	} else {
		c.events.raise(chEvent{ev: sm.ChannelEventReadBudgetSpent})
	}
}

func (c chPerformer) ReadComplete() { c.callback(func(h Handler) { h.OnReadComplete(c.Channel) }) }

func (c chPerformer) WriteSocket() { c.writeSocket() }

func (c chPerformer) CompleteWrites() { c.completeWrites() }

func (c chPerformer) StartConnectTimer() {
	l := c.loop
	c.connectT = l.after(c.opts.ConnectTimeout, func() {
		c.fire(chEvent{ev: sm.ChannelEventConnectDeadline, cause: fmt.Errorf("dial %v: %w", c.raddr, errConnectTimeout)})
	})
}

func (c chPerformer) CancelConnectTimer() { c.loop.cancel(c.connectT) }

// timed reports whether the channel has a timeout to keep.
func (c *Channel) timed() bool { return c.opts.IdleTimeout > 0 || c.opts.WriteTimeout > 0 }

// StartTimer sets the timeouts' one timer for the earliest deadline left; a
// no-op without timeouts. The first call (on activation) starts both clocks.
func (c chPerformer) StartTimer() {
	if !c.timed() {
		return
	}
	l := c.loop
	now := l.opts.Clock.Now()
	if c.timeoutFn == nil {
		c.lastActive, c.lastProgress = now, now
		c.timeoutFn = c.timerFired
	}
	// Without pending output, the write timeout is looked at again a whole
	// timeout from now: bytes that begin to wait meanwhile are measured from
	// then (lastProgress), and the check that follows sets the exact time.
	var when time.Time
	if d := c.opts.WriteTimeout; d > 0 {
		when = now.Add(d)
		if c.queued > 0 {
			when = c.lastProgress.Add(d)
		}
	}
	if d := c.opts.IdleTimeout; d > 0 {
		if idle := c.lastActive.Add(d); when.IsZero() || idle.Before(when) {
			when = idle
		}
	}
	l.cancel(c.timeoutT)
	c.timeoutT = l.after(when.Sub(now), c.timeoutFn)
}

// timerFired feeds timerFired with what the runtime measured: which timeout,
// if any, has passed.
func (c *Channel) timerFired() {
	c.timeoutT = nil
	now := c.loop.opts.Clock.Now()
	out, cause := sm.TimerCheckNotYet, error(nil)
	switch {
	case c.opts.WriteTimeout > 0 && c.queued > 0 && !now.Before(c.lastProgress.Add(c.opts.WriteTimeout)):
		out, cause = sm.TimerCheckWriteStalled, &timeoutError{kind: ErrWriteTimeout, d: c.opts.WriteTimeout, id: c.id}
	case c.opts.IdleTimeout > 0 && !now.Before(c.lastActive.Add(c.opts.IdleTimeout)):
		out, cause = sm.TimerCheckIdle, &timeoutError{kind: ErrIdleTimeout, d: c.opts.IdleTimeout, id: c.id}
	}
	c.fire(chEvent{ev: sm.ChannelEventTimerFired, out: uint8(out), cause: cause})
}

// dropTimer cancels the timeouts' timer as the channel ends (settleClosed,
// forgetFD).
func (c *Channel) dropTimer() {
	c.loop.cancel(c.timeoutT)
	c.timeoutT = nil
}

// invalidOnEBADF: a read, write or connect that says EBADF invalidates the
// descriptor at once, as a poller change's does (setInterest), not only
// when the table hears the result: a result raised before it in the same
// action list (a disarm's ENOMEM before a write's EBADF) is heard first, and
// its row's removal and close(2) must not use the number (D2); they answer
// with the EBADF the kernel already gave.
func invalidOnEBADF(fd *sockets.FD, out sm.ConnectResult) {
	if out == sm.ConnectResultDescriptorInvalid {
		fd.Invalidate()
	}
}

func (c chPerformer) ConnectSocket() {
	fd := c.reg.fd
	err := fd.Connect(c.raddr)
	out := sockets.ClassifyConnect(err)
	invalidOnEBADF(fd, out)
	c.events.raiseResult(chEvent{ev: sm.ChannelEventConnectCalled, out: uint8(out), cause: connectCause(out, c.raddr, err)})
}

func (c chPerformer) CheckConnect() {
	fd := c.reg.fd
	err := fd.ConnectResult()
	out := sockets.ClassifyConnect(err)
	invalidOnEBADF(fd, out)
	c.events.raiseResult(chEvent{ev: sm.ChannelEventConnectChecked, out: uint8(out), cause: connectCause(out, c.raddr, err)})
}

func (c chPerformer) FailConnect() {
	if c.dialed != nil {
		err := c.cause
		if err == nil {
			err = fmt.Errorf("dial %v: %w", c.raddr, net.ErrClosed)
		}
		d := c.dialed
		c.dialed = nil
		c.complete(d, err)
	}
}

func (c chPerformer) FireActive() {
	if c.dialed != nil {
		d := c.dialed
		c.dialed = nil
		c.complete(d, nil)
	}
	c.callback(func(h Handler) { h.OnActive(c.Channel) })
}

func (c chPerformer) ArmRead() { c.setInterest(true, c.reg.write) }

func (c chPerformer) DisarmRead() { c.setInterest(false, c.reg.write) }

func (c chPerformer) ArmWrite() { c.setInterest(c.reg.read, true) }

func (c chPerformer) DisarmWrite() { c.setInterest(c.reg.read, false) }

func (c chPerformer) CountSpurious() { c.loop.counters.SpuriousReadiness.Add(1) }

func (c chPerformer) FireInputClosed() { c.callback(func(h Handler) { h.OnInputClosed(c.Channel) }) }

func (c chPerformer) FireWritabilityChanged() {
	writable := !c.m.Vars().Unwritable
	c.callback(func(h Handler) { h.OnWritabilityChanged(c.Channel, writable) })
}

func (c chPerformer) FireError() {
	err := c.errOrClosed()
	c.callback(func(h Handler) { h.OnError(c.Channel, err) })
}

func (c chPerformer) FailPendingWrites() {
	err := c.errOrClosed()
	out := c.out
	c.out, c.queued = nil, 0
	for _, w := range out {
		if w.done != nil {
			c.complete(w.done, err)
		}
	}
}

func (c chPerformer) Deregister() {
	l := c.loop
	fd := c.reg.fd
	if fd.Gone() {
		// Invalidated by an earlier action of this row: the removal is not
		// made (D2), and its answer is the one the kernel gave then.
		c.events.raiseResult(chEvent{ev: sm.ChannelEventDeregistered, out: uint8(sm.PollerControlResultDescriptorInvalid), cause: c.descriptorError(pollRemoveCall, sockets.ErrClosed)})
		return
	}
	err := l.poller.Remove(fd.Fd())
	if l.pollerLost(err) {
		return // the loop fails; its loopFailed finishes the close without the poller
	}
	out := sockets.ClassifyPollerControl(err)
	c.events.raiseResult(chEvent{ev: sm.ChannelEventDeregistered, out: uint8(out), cause: c.descriptorError(pollRemoveCall, err)})
}

func (c chPerformer) CloseFD() {
	fd := c.reg.fd
	err := fd.Close() // nil for EINTR too: it counts as closed (D4)
	out := sockets.ClassifyClose(err)
	c.events.raiseResult(chEvent{ev: sm.ChannelEventReleased, out: uint8(out), cause: c.descriptorError("", err)})
}

func (c chPerformer) ForgetFD() {
	l := c.loop
	fd := c.reg.fd
	fd.Forget()
	l.stale(&c.reg) // its late events are stale now (D3)
	c.dropTimer()
}

func (c chPerformer) CountDescriptorInvalid() { c.loop.counters.DescriptorsContained.Add(1) }

func (c chPerformer) PanicWithDiagnostics() {
	fd := c.reg.fd
	panic(crashPanic(fmt.Sprintf("fsmkernel: descriptor %d of channel %d invalidated outside the kernel during %s: %v", fd.Fd(), c.id, channelStep(c.current), c.current.cause)))
}

func (c chPerformer) Repanic() { panic(c.cause) }

func (c chPerformer) FireInactive() { c.callback(func(h Handler) { h.OnInactive(c.Channel) }) }

func (c chPerformer) LeaveLoop() { c.loop.leave(&c.reg) }

func (c chPerformer) SettleClosed() {
	c.dropTimer()
	c.settle(c.cause)
}

var errConnectTimeout = errors.New("connect timed out")

// descriptorError is the cause a failed syscall on the channel's descriptor
// gives its close, naming the channel, the descriptor number and the syscall:
// after a DEL's EBADF or ENOENT the number may already be another file's. An
// empty syscall means err is an *os.SyscallError already (FD.Close's).
func (c *Channel) descriptorError(syscall string, err error) error {
	if err == nil {
		return nil
	}
	if syscall != "" {
		err = os.NewSyscallError(syscall, err)
	}
	return opError("close", c.raddr, fmt.Errorf("channel %d, fd %d: %w", c.id, c.reg.fd.Fd(), err))
}

func (c *Channel) errOrClosed() error {
	if c.cause != nil {
		return c.cause
	}
	return net.ErrClosed
}

func (c *Channel) settle(err error) {
	closed := err
	if closed == nil {
		closed = fmt.Errorf("%w: channel %d", net.ErrClosed, c.id)
	}
	c.closeInbox(closed)
	c.closeErr = err
	close(c.closedCh)
	if h, ok := c.handler.(settledHandler); ok {
		h.settled(c)
	}
}

// settledHandler is a Handler told when its channel's close result is
// complete, whether or not the channel was ever active or its handler
// panicked: a Conn, whose waiting Read wakes on it.
type settledHandler interface{ settled(*Channel) }

func (c *Channel) setInterest(read, write bool) {
	if err := c.reg.interest(read, write); err != nil {
		if err == sockets.ErrClosed {
			return // refused without a call: the number's EBADF is already the table's
		}
		if c.loop.pollerLost(err) {
			return // the loop fails; its loopFailed closes the channel
		}
		out := sockets.ClassifyPollerControl(err)
		if out == sm.PollerControlResultDescriptorInvalid {
			c.reg.fd.Invalidate() // no later action of this list may touch the number
		}
		c.events.raiseResult(chEvent{ev: sm.ChannelEventPollerControlFailed, out: uint8(out), cause: opError("poll", nil, err)})
	}
}

// writeSocket writes the queued bytes with one writev and feeds its result.
func (c *Channel) writeSocket() {
	// The loop's scratch: a local array would escape through the Syscalls
	// interface and be allocated on every write.
	bufs := c.loop.iov[:0]
	for i := range c.out {
		w := &c.out[i]
		if len(bufs) == cap(bufs) || w.awaiting {
			break
		}
		bufs = append(bufs, w.p[w.off:])
	}
	written, err := c.reg.fd.Writev(bufs)
	for i := range bufs {
		bufs[i] = nil // keep no caller's buffer alive past the write
	}
	c.written = written
	if written > 0 && c.timeoutFn != nil {
		c.lastActive = c.loop.opts.Clock.Now()
		c.lastProgress = c.lastActive
	}
	out := sockets.ClassifyWrite(err) // partial for any count; step may refine it
	if out == sm.WriteResultDescriptorInvalid {
		c.reg.fd.Invalidate() // see invalidOnEBADF
	}
	var cause error
	switch out {
	case sm.WriteResultBrokenPipe, sm.WriteResultReset, sm.WriteResultDescriptorInvalid, sm.WriteResultOtherError:
		cause = opError("write", c.raddr, err)
	}
	c.events.raiseResult(chEvent{ev: sm.ChannelEventWrote, out: uint8(out), cause: cause})
}

// completeWrites reports the writes the last writev finished, once each.
func (c *Channel) completeWrites() {
	before := c.queued
	n := c.written
	c.written = 0
	c.queued -= n
	// Take the finished writes off the queue first (keeping its array), then
	// report them: a completion callback may queue another write.
	done := 0
	for done < len(c.out) && !c.out[done].awaiting {
		w := &c.out[done]
		left := len(w.p) - w.off
		if left > 0 && n == 0 {
			break
		}
		if n < left {
			w.off += n
			break
		}
		n -= left // a write with nothing left (an empty one) finishes here
		done++
	}
	// The queue and the finished list swap arrays, so that nothing is copied when
	// every write finished, as is usual. Records are zeroed one by one: clear
	// would cost a runtime call for the one or two an echo has.
	fin := c.out
	c.out = c.finished[:0]
	if done < len(fin) {
		c.out = append(c.out, fin[done:]...)
		for i := done; i < len(fin); i++ {
			fin[i] = write{}
		}
	}
	c.finished = fin[:done]
	for i := range c.finished {
		done := c.finished[i].done
		c.finished[i] = write{}
		if done != nil {
			c.complete(done, nil)
		}
	}
	c.finished = c.finished[:0]
	if before > c.low && c.queued <= c.low {
		c.events.raise(chEvent{ev: sm.ChannelEventLowWatermark})
	}
}

// connectCause is the error of a connect outcome that fails the dial, or nil.
func connectCause(out sm.ConnectResult, addr net.Addr, err error) error {
	switch out {
	case sm.ConnectResultConnected, sm.ConnectResultInProgress:
		return nil
	}
	return opError("dial", addr, err)
}

func opError(op string, addr net.Addr, err error) error {
	if err == nil {
		return nil
	}
	network := ""
	if addr != nil {
		network = addr.Network()
	}
	return &net.OpError{Op: op, Net: network, Addr: addr, Err: err}
}
