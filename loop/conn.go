package loop

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// This file adapts channels to the standard library's interfaces, so that code
// written against net.Conn and net.Listener can run on a Group.
//
// A Conn's channel reads as bytes arrive (auto-read), into the Conn's buffer,
// and a Read takes them from there. When the buffer holds connReadLimit bytes
// nobody has read, the Conn pauses its channel's reading (pauseRead, fired in
// the OnRead that filled it) and resumes it (resumeRead) once Reads have taken
// it below half of that: a Conn nobody reads from holds at most the limit and
// one read cycle (the loop's ReadBudget times its ReadBufferSize), and leaves
// the rest in the kernel, whose window pushes back on the peer. Read interest
// therefore stays armed between requests, as the standard library's poller
// keeps it, instead of being armed for each Read and disarmed after it. One
// exception to the bound: epoll reports a hangup whatever the interest, and
// the table reads on it (one read per wakeup while paused) until the input
// ends, so after the peer is gone the buffer takes what the kernel still held
// of its bytes. A Write
// copies its bytes, queues them on the channel and blocks until they are
// written, so the output queue is bounded by the writes in progress; reading is
// not paused by the output (NoBackpressure), since a net.Conn's reader and
// writer are independent and pausing one for the other could deadlock a peer
// that does the same.
//
// A Conn's Write, and a Read that resumes reading, take their channel's
// step themselves when the loop is waiting in its poller: under the loop's
// lock, which the loop holds for everything it does on a wakeup and releases
// only around its wait, the caller fires the same event (writeQueued,
// resumeRead) at the same table, whose actions the same performer carries
// out: the writev, the completion, an interest change (epoll_ctl during the
// loop's epoll_wait). What the step raises for the loop's own table (a channel
// that left) waits for the loop, which is woken to hear it. When the lock is
// taken, or the loop's poller is not the system's epoll (Options.NewPoller:
// an injector's or a simulator's poller, which take no change during a wait),
// the step is submitted to the loop as before. Only the adapter's channels
// step off the loop: a Handler's callbacks still run on the loop goroutine.
// And a loop serving Conns waits parked in the Go runtime's poller rather than
// blocked in epoll_wait (epoller.setParking), so that the Conn goroutines it
// handed bytes or a completion run at once, on its P, and take their next
// steps inline while it waits.

var (
	_ net.Conn     = (*Conn)(nil)
	_ net.Listener = (*ConnListener)(nil)
)

// connChunk bounds the bytes one Write copies and queues at a time, so that a
// huge Write does not double its size in memory.
const connChunk = 1 << 20

// connIdleBuffer is the capacity of a drained read buffer that a Conn keeps for
// the next cycle; a larger one is released.
const connIdleBuffer = 64 << 10

// connReadLimit is how many unread bytes a Conn's buffer takes before the
// Conn pauses its channel's reading; it resumes below half of it.
const connReadLimit = 64 << 10

// connBacklog bounds the connections a ConnListener has accepted that no Accept
// has taken yet; connections beyond it are closed as they arrive.
const connBacklog = 512

// connOptions are the options of every Conn's channel (see the top of the file).
func connOptions() *ChannelOptions {
	return &ChannelOptions{HalfClosure: true, NoBackpressure: true}
}

// DialConn connects to addr (a *net.TCPAddr, a *net.UnixAddr or a
// *vsock.Addr) on a loop of the group and returns the connection as a *Conn.
// ctx bounds the connect. Errors are *net.OpError.
func (g *Group) DialConn(ctx context.Context, addr net.Addr) (net.Conn, error) {
	c := newConn(addr.Network(), nil, g.clock())
	ch, err := g.Dial(ctx, addr, connHandler{c}, connOptions())
	if err != nil {
		return nil, dialError(addr, err)
	}
	// OnActive follows the dial's success in the same action list; it records
	// the addresses on the loop, where the descriptor cannot be closed under it.
	select {
	case <-c.active:
	case <-ch.Closed():
		return nil, dialError(addr, channelError(ch, net.ErrClosed))
	}
	c.ch = ch
	return c, nil
}

func dialError(addr net.Addr, err error) error {
	// The channel's own *net.OpError names no network but TCP; rebuild it.
	var op *net.OpError
	switch {
	case errors.Is(err, errConnectTimeout), errors.Is(err, context.DeadlineExceeded):
		err = os.ErrDeadlineExceeded
	case errors.As(err, &op):
		err = op.Err
	}
	return &net.OpError{Op: "dial", Net: addr.Network(), Addr: addr, Err: err}
}

// ListenConn listens on addr (a *net.TCPAddr, a *net.UnixAddr or a
// *vsock.Addr) and returns a *ConnListener whose Accept hands out each
// connection as a *Conn served by a loop of the group.
func (g *Group) ListenConn(addr net.Addr) (net.Listener, error) {
	x := &ConnListener{network: addr.Network(), clock: g.clock(), ready: make(chan struct{}, 1), closed: make(chan struct{})}
	ln, err := g.Serve(addr, x.accepted, nil)
	if err != nil {
		var op *net.OpError
		if !errors.As(err, &op) {
			op = &net.OpError{Op: "listen", Net: addr.Network(), Addr: addr, Err: err}
		}
		return nil, op
	}
	x.ln = ln
	x.addr = ln.Addr()
	if x.addr == nil {
		x.addr = addr
	}
	return x, nil
}

// ConnListener is a net.Listener over a Listener: Accept returns *Conn values.
type ConnListener struct {
	ln      *Listener
	addr    net.Addr
	network string
	clock   Clock

	mu      sync.Mutex
	pending []*Conn // active, not yet taken by Accept
	ready   chan struct{}
	closed  chan struct{}
	once    sync.Once
}

// Listener returns the Listener the ConnListener accepts from.
func (x *ConnListener) Listener() *Listener { return x.ln }

// accepted runs on the listener's loop for each new connection.
func (x *ConnListener) accepted(net.Addr) (Handler, *ChannelOptions) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.isClosed() || len(x.pending) >= connBacklog {
		return nil, nil
	}
	return connHandler{newConn(x.network, x, x.clock)}, connOptions()
}

// admit runs on the connection's loop once it is active.
func (x *ConnListener) admit(c *Conn) {
	x.mu.Lock()
	if x.isClosed() {
		x.mu.Unlock()
		c.ch.Close()
		return
	}
	x.pending = append(x.pending, c)
	x.mu.Unlock()
	signal(x.ready)
}

func (x *ConnListener) isClosed() bool {
	select {
	case <-x.closed:
		return true
	default:
		return false
	}
}

// Accept waits for the next connection and returns it as a *Conn.
func (x *ConnListener) Accept() (net.Conn, error) {
	for {
		x.mu.Lock()
		if x.isClosed() {
			x.mu.Unlock()
			return nil, x.opError(net.ErrClosed)
		}
		if len(x.pending) > 0 {
			c := x.pending[0]
			x.pending[0] = nil
			x.pending = x.pending[1:]
			more := len(x.pending) > 0
			x.mu.Unlock()
			if more {
				signal(x.ready) // for another Accept waiting
			}
			return c, nil
		}
		x.mu.Unlock()
		select {
		case <-x.ready:
		case <-x.closed:
		case <-x.ln.Closed():
			// The loop closed the listener (shutdown or failure): connections
			// already taken in are still handed out, then its cause.
			x.mu.Lock()
			n := len(x.pending)
			x.mu.Unlock()
			if n == 0 {
				err := x.ln.Err()
				if err == nil {
					err = net.ErrClosed
				}
				return nil, x.opError(err)
			}
		}
	}
}

// Close stops accepting and closes the connections no Accept has taken. It
// returns at once; Listener().Closed() reports when the descriptor is closed.
func (x *ConnListener) Close() error {
	first := false
	x.once.Do(func() {
		first = true
		x.mu.Lock()
		close(x.closed)
		pending := x.pending
		x.pending = nil
		x.mu.Unlock()
		for _, c := range pending {
			c.Close()
		}
		x.ln.Close()
	})
	if !first {
		return x.opError(net.ErrClosed)
	}
	return nil
}

// Addr returns the listening address.
func (x *ConnListener) Addr() net.Addr { return x.addr }

func (x *ConnListener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: x.network, Addr: x.addr, Err: err}
}

// Conn is a net.Conn over a Channel. Its methods are safe from any goroutine
// but, like the channel's, must not be called from a Handler callback on a loop:
// Read and Write wait for the loop. While the loop waits in its poller, a
// Write and a Read that resumes reading take their channel's step on their own
// goroutine, under the loop's lock (see the top of conn.go).
type Conn struct {
	ch           *Channel
	network      string
	laddr, raddr net.Addr
	active       chan struct{}
	ln           *ConnListener // for an accepted Conn until it is active

	// rsem and wsem admit one Read and one Write at a time. A Write whose
	// deadline passed while its bytes were queued leaves wsem to their
	// completion, so the next Write waits for them.
	rsem, wsem connSem
	rdl, wdl   deadline
	spare      *connWrite // the last completed write's record, for the next; under wsem

	mu       sync.Mutex
	buf      []byte // read and not yet taken, from off
	off      int
	paused   bool          // the buffer reached connReadLimit: reading is paused
	eof      bool          // the peer closed its side
	ended    bool          // the channel's close result is complete
	readable chan struct{} // wakes the Read waiting: bytes, EOF, the end, a deadline, Close
	resumeFn func()        // resume, bound once

	closed     chan struct{}
	isClosedAt atomic.Bool // closed is closed, read without a select
	once       sync.Once
}

func newConn(network string, ln *ConnListener, clock Clock) *Conn {
	c := &Conn{
		network:  network,
		ln:       ln,
		active:   make(chan struct{}),
		rsem:     makeConnSem(),
		wsem:     makeConnSem(),
		rdl:      makeDeadline(clock),
		wdl:      makeDeadline(clock),
		readable: make(chan struct{}, 1),
		closed:   make(chan struct{}),
	}
	c.rdl.wake = c.readable
	c.resumeFn = c.resume
	return c
}

// Channel returns the channel the Conn drives.
func (c *Conn) Channel() *Channel { return c.ch }

// Read reads what the peer sent: it waits until bytes arrive, the peer closes
// its side (io.EOF), the read deadline passes or the Conn closes.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.acquire(&c.rsem, &c.rdl, "read"); err != nil {
		return 0, err
	}
	defer c.rsem.release()
	for {
		if err := c.check(&c.rdl, "read"); err != nil {
			return 0, err
		}
		c.mu.Lock()
		if c.off < len(c.buf) {
			n := copy(p, c.buf[c.off:])
			c.off += n
			if c.off == len(c.buf) {
				c.off = 0
				c.buf = c.buf[:0]
				if cap(c.buf) > connIdleBuffer {
					c.buf = nil
				}
			}
			resume := c.paused && len(c.buf)-c.off < connReadLimit/2
			if resume {
				c.paused = false
			}
			c.mu.Unlock()
			if resume && !c.ch.stepInline(c.resumeFn) {
				// Refused only by a loop that is stopping, whose drain or
				// forced close ends the channel's input anyway: the Read
				// that waits then wakes on settled.
				_ = c.ch.loop.Execute(c.resumeFn)
			}
			return n, nil
		}
		switch {
		case len(p) == 0:
			c.mu.Unlock()
			return 0, nil
		case c.eof:
			c.mu.Unlock()
			return 0, io.EOF
		case c.ended:
			c.mu.Unlock()
			return 0, c.opError("read", channelError(c.ch, net.ErrClosed))
		}
		c.mu.Unlock()
		// Everything a Read waits for signals readable: OnRead, OnInputClosed,
		// settled, the read deadline and Close. A signal left by an earlier
		// wake only costs another look.
		<-c.readable
	}
}

// resume runs as a step of the Conn's channel (inline or on the loop): it
// resumes reading unless the buffer filled again since the Read that asked
// for it, so that the table's pause follows the Conn's last decision however
// the steps were ordered.
func (c *Conn) resume() {
	c.mu.Lock()
	paused := c.paused
	c.mu.Unlock()
	if !paused {
		c.ch.resumeRead()
	}
}

// Write writes p and returns once every byte is written (handed to the
// kernel), the write deadline passes or the Conn closes. It copies p, at most
// 1 MiB at a time. When the deadline passes while bytes are queued, those bytes
// stay queued and go out in order unless the connection fails: the count
// returned includes them, and the next Write waits for them.
func (c *Conn) Write(p []byte) (int, error) {
	if err := c.acquire(&c.wsem, &c.wdl, "write"); err != nil {
		return 0, err
	}
	if err := c.check(&c.wdl, "write"); err != nil {
		c.wsem.release()
		return 0, err
	}
	if len(p) == 0 {
		c.wsem.release()
		return 0, nil
	}
	n := 0
	for {
		chunk := p[:min(len(p), connChunk)]
		p = p[len(chunk):]
		w := c.nextWrite()
		if !c.ch.writeInline(chunk, w.completeFn) {
			c.ch.Write(w.hold(chunk), w.completeFn)
		}
		if w.state.CompareAndSwap(writeRunning, writeWaiting) {
			select {
			case <-w.done:
			case <-c.wdl.wait():
				w.abandon()
				return n + len(chunk), c.opError("write", os.ErrDeadlineExceeded)
			case <-c.closed:
				w.abandon()
				return n, c.opError("write", net.ErrClosed)
			}
		} // else completed already, most often by the inline step: no channel
		err := w.err
		c.spare = w // completed and received: the channel is done with it
		if err != nil {
			c.wsem.release()
			return n, c.opError("write", c.writeError(err))
		}
		n += len(chunk)
		if len(p) == 0 {
			c.wsem.release()
			return n, nil
		}
		// Keep wsem for the next chunk: concurrent Writes do not interleave.
		if err := c.check(&c.wdl, "write"); err != nil {
			c.wsem.release()
			return n, err
		}
	}
}

// nextWrite returns the record for the next chunk: the spare left by the
// last Write whose completion it received, else a new one. A record a Write
// stopped waiting for stays with its completion, which may come later, and is
// never reused.
func (c *Conn) nextWrite() *connWrite {
	w := c.spare
	c.spare = nil
	if w == nil {
		w = &connWrite{c: c, done: make(chan struct{}, 1)}
		w.completeFn = w.complete
	}
	w.state.Store(writeRunning)
	return w
}

// hold copies chunk into the record's buffer, for a write queued through the
// loop's inbox: the Write may return before the loop takes it (deadline,
// Close). An inline write needs no copy (writeInline copies what it leaves).
func (w *connWrite) hold(chunk []byte) []byte {
	if cap(w.buf) < len(chunk) || cap(w.buf) > connIdleBuffer {
		w.buf = make([]byte, len(chunk), max(len(chunk), 512))
	}
	w.buf = w.buf[:len(chunk)]
	copy(w.buf, chunk)
	return w.buf
}

// connWrite is one queued chunk of a Write. The Write holds wsem while it
// waits; if it stops waiting first (deadline, Close), the completion releases
// wsem instead, so that the next Write waits for the queued bytes.
type connWrite struct {
	c          *Conn
	buf        []byte // the chunk's copy when queued through the inbox, the channel's until completion
	err        error  // the completion's, written before state says completed
	done       chan struct{}
	completeFn func(error)  // complete, bound once
	state      atomic.Int32 // writeRunning, writeWaiting, writeCompleted or writeAbandoned
}

// The states of a connWrite. Only a Write that waits (writeWaiting) is sent
// a completion on done: one completed before the Write looked (inline,
// mostly) costs no channel operation.
const (
	writeRunning   int32 = iota // the Write has not begun to wait
	writeWaiting                // the Write waits on done
	writeCompleted              // complete ran; err is set
	writeAbandoned              // the Write stopped waiting first
)

// complete records the result before it marks the record: once the Write has
// seen writeCompleted, the record may be reused at once, and nothing of this
// completion may touch it afterwards.
func (w *connWrite) complete(err error) {
	c := w.c
	w.err = err
	for {
		switch w.state.Load() {
		case writeRunning:
			if w.state.CompareAndSwap(writeRunning, writeCompleted) {
				return
			}
		case writeWaiting:
			if w.state.CompareAndSwap(writeWaiting, writeCompleted) {
				w.done <- struct{}{}
				return
			}
		default: // abandoned: the Write left wsem to the completion
			c.wsem.release()
			return
		}
	}
}

func (w *connWrite) abandon() {
	if !w.state.CompareAndSwap(writeWaiting, writeAbandoned) {
		w.c.wsem.release() // completed meanwhile: the Write still holds wsem
	}
}

// writeError is the error of a failed write: net.ErrClosed once the Conn is
// closed, EPIPE when the peer ended the connection and the channel recorded no
// cause, else the channel's cause.
func (c *Conn) writeError(err error) error {
	if c.isClosed() {
		return net.ErrClosed
	}
	c.mu.Lock()
	eof := c.eof
	c.mu.Unlock()
	if eof && errors.Is(err, net.ErrClosed) {
		return os.NewSyscallError("write", syscall.EPIPE)
	}
	return err
}

// acquire takes sem, unless the deadline passes or the Conn closes first.
func (c *Conn) acquire(sem *connSem, d *deadline, op string) error {
	if sem.mu.TryLock() {
		return nil
	}
	sem.waiters.Add(1)
	defer sem.waiters.Add(-1)
	for {
		// After counting itself: a release either is seen here or sees it.
		if sem.mu.TryLock() {
			return nil
		}
		select {
		case <-sem.released:
		case <-d.wait():
			return c.opError(op, os.ErrDeadlineExceeded)
		case <-c.closed:
			return c.opError(op, net.ErrClosed)
		}
	}
}

// connSem admits one Read, or one Write, at a time: a lock, whose holder may
// be another goroutine than the one that took it (a write's completion
// releases wsem for a Write that stopped waiting). Taking and releasing it
// uncontended costs no channel operation; a release signals the waiters, if
// any, to try again.
type connSem struct {
	mu       sync.Mutex
	waiters  atomic.Int32
	released chan struct{} // one slot: a release since a waiter last looked
}

func makeConnSem() connSem { return connSem{released: make(chan struct{}, 1)} }

func (s *connSem) release() {
	s.mu.Unlock()
	if s.waiters.Load() > 0 {
		signal(s.released)
	}
}

// check reports a closed Conn or a passed deadline.
func (c *Conn) check(d *deadline, op string) error {
	if c.isClosedAt.Load() {
		return c.opError(op, net.ErrClosed)
	}
	if d.passed.Load() {
		return c.opError(op, os.ErrDeadlineExceeded)
	}
	return nil
}

// Close closes the connection: a pending Read or Write returns net.ErrClosed,
// queued bytes not yet written are dropped. It returns at once;
// Channel().Closed() reports when the descriptor is closed.
func (c *Conn) Close() error {
	first := false
	c.once.Do(func() {
		first = true
		close(c.closed)
		c.isClosedAt.Store(true)
		signal(c.readable)
		c.ch.Close()
	})
	if !first {
		return c.opError("close", net.ErrClosed)
	}
	return nil
}

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets when a pending and future Read times out; the zero time
// means never. It applies to a Read already waiting.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", net.ErrClosed)
	}
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets when a pending and future Write times out; the zero
// time means never. It applies to a Write already waiting.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opError("set", net.ErrClosed)
	}
	c.wdl.set(t)
	return nil
}

func (c *Conn) isClosed() bool { return c.isClosedAt.Load() }

func (c *Conn) opError(op string, err error) error {
	if op, ok := err.(*net.OpError); ok {
		err = op.Err
	}
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: c.raddr, Err: err}
}

// channelError is the cause the channel closed with, or def for a clean close.
func channelError(ch *Channel, def error) error {
	if err := ch.Err(); err != nil {
		return err
	}
	return def
}

// connHandler receives a Conn's channel callbacks on its loop. It is a separate
// type so that the callbacks are not part of Conn's API.
type connHandler struct{ c *Conn }

func (h connHandler) OnActive(ch *Channel) {
	c := h.c
	c.laddr = ch.LocalAddr()
	c.raddr = ch.RemoteAddr()
	close(c.active)
	if c.ln != nil {
		c.ch = ch
		ln := c.ln
		c.ln = nil
		ln.admit(c)
	}
}

// OnRead runs inside the channel's step: a pause it fires is heard before the
// cycle's next read, which it ends.
func (h connHandler) OnRead(ch *Channel, p []byte) {
	c := h.c
	c.mu.Lock()
	c.buf = append(c.buf, p...)
	full := len(c.buf)-c.off >= connReadLimit
	if full {
		c.paused = true
	}
	c.mu.Unlock()
	if full {
		ch.pauseRead() // the table ignores it when reading is paused already
	}
	signal(c.readable)
}

func (connHandler) OnReadComplete(*Channel) {}

func (h connHandler) OnInputClosed(ch *Channel) {
	c := h.c
	c.mu.Lock()
	c.eof = true
	c.mu.Unlock()
	signal(c.readable)
}

// settled runs once the channel's close result is complete, on every path
// (see settledHandler): a Read waiting for bytes returns the cause.
func (h connHandler) settled(*Channel) {
	c := h.c
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	signal(c.readable)
}

func (connHandler) OnWritabilityChanged(*Channel, bool) {}
func (connHandler) OnError(*Channel, error)             {}
func (connHandler) OnInactive(*Channel)                 {}

// signal wakes one waiter of a one-slot notification channel, if any.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// deadline is a settable point in time. Its passing sets passed, closes the
// channel wait returns (made only when someone asks for it) and signals wake,
// if set. Moving it while a caller waits applies to that caller: the channel
// is replaced only after it was closed. One timer serves every setting (net/http
// sets a Conn's deadlines several times per request): set reschedules it, and a
// firing that finds the deadline moved later reschedules it for the rest.
type deadline struct {
	clock  Clock
	wake   chan struct{} // signalled when the deadline passes; nil for none
	passed atomic.Bool   // the deadline has passed: read without the lock

	mu     sync.Mutex
	when   time.Time     // the deadline, zero for none
	cancel chan struct{} // closed when it passes; nil until wait asks for it
	timer  clockTimer    // nil until a deadline in the future is first set
	armed  bool          // timer is set
}

func makeDeadline(clock Clock) deadline {
	return deadline{clock: clock}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.when = t
	var dur time.Duration
	if !t.IsZero() {
		dur = t.Sub(d.clock.Now())
	}
	if t.IsZero() || dur > 0 {
		d.passed.Store(false)
		if d.cancel != nil && isClosed(d.cancel) {
			d.cancel = nil
		}
	}
	switch {
	case t.IsZero():
		d.stop()
	case dur > 0:
		if d.timer == nil {
			d.timer = newClockTimer(d.clock, d.fire)
		}
		d.timer.Reset(dur)
		d.armed = true
	default:
		d.stop()
		d.pass()
	}
}

// stop stops the timer if it is set; under mu.
func (d *deadline) stop() {
	if d.armed {
		d.timer.Stop()
		d.armed = false
	}
}

// pass marks the deadline passed and tells its waiters; under mu.
func (d *deadline) pass() {
	if d.passed.Load() {
		return
	}
	d.passed.Store(true)
	if d.cancel != nil {
		close(d.cancel)
	}
	if d.wake != nil {
		signal(d.wake)
	}
}

// fire runs when the timer goes off: it passes the deadline if its time has
// come, and otherwise (the deadline moved later since the timer was set) sets
// the timer for what is left.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.armed = false
	if d.when.IsZero() {
		return
	}
	if left := d.when.Sub(d.clock.Now()); left > 0 {
		d.timer.Reset(left)
		d.armed = true
		return
	}
	d.pass()
}

// wait returns a channel closed once the deadline has passed.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
		if d.passed.Load() {
			close(d.cancel)
		}
	}
	return d.cancel
}

// clockTimer is one reusable timer of a Clock calling a fixed function.
type clockTimer interface {
	Reset(d time.Duration)
	Stop()
}

// newClockTimer returns a timer calling f: a time.Timer for the system's
// clock, or AfterFunc again at each Reset for any other.
func newClockTimer(clock Clock, f func()) clockTimer {
	if _, ok := clock.(systemClock); ok {
		t := time.AfterFunc(time.Hour, f)
		t.Stop()
		return systemTimer{t}
	}
	return &afterFuncTimer{clock: clock, f: f}
}

type systemTimer struct{ t *time.Timer }

func (t systemTimer) Reset(d time.Duration) { t.t.Reset(d) }
func (t systemTimer) Stop()                 { t.t.Stop() }

type afterFuncTimer struct {
	clock Clock
	f     func()
	stop  func() bool
}

func (t *afterFuncTimer) Reset(d time.Duration) {
	t.Stop()
	t.stop = t.clock.AfterFunc(d, t.f)
}

func (t *afterFuncTimer) Stop() {
	if t.stop != nil {
		t.stop()
		t.stop = nil
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
