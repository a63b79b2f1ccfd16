package loop

import (
	"container/heap"
	"fmt"
	"os"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// registration is one channel's or listener's place in its loop: a slot with a
// generation, so events of a registration that ended are dropped instead of
// reaching whoever takes the slot (or the descriptor number) next (D3).
type registration struct {
	loop        *Loop
	slot, gen   uint32
	fd          *sockets.FD
	read, write bool // interest in the poller
	ch          *Channel
	ln          *Listener
}

func (r *registration) token() uint64 { return uint64(r.slot)<<32 | uint64(r.gen) }

func (r *registration) ready(ev PollEvent) {
	if r.ch != nil {
		r.ch.ready(ev)
	} else {
		r.ln.ready(ev)
	}
}

func (r *registration) drain() {
	if r.ch != nil {
		r.ch.fire(chEvent{ev: sm.ChannelEventDrain})
	} else {
		r.ln.fire(lnEvent{ev: sm.ListenerEventDrain})
	}
}

func (r *registration) forcedShutdown() {
	if r.ch != nil {
		r.ch.fire(chEvent{ev: sm.ChannelEventForcedShutdown, cause: errForcedClose})
	} else {
		r.ln.fire(lnEvent{ev: sm.ListenerEventForcedShutdown, cause: errForcedClose})
	}
}

func (r *registration) loopFailed() {
	cause := ErrLoopFailed
	if r.loop.cause != nil {
		cause = r.loop.cause
	}
	if r.ch != nil {
		// Heard before the writes waiting in the inbox, unlike other outside
		// events: the loop has lost its poller, and a write the table took
		// first could fail and ask that poller for a removal (epoll_ctl on a
		// number the loop was told is invalid, D2). The table refuses them
		// once it has heard loopFailed, and the settle fails them.
		r.ch.fireDirect(chEvent{ev: sm.ChannelEventLoopFailed, cause: cause})
	} else {
		r.ln.fire(lnEvent{ev: sm.ListenerEventLoopFailed, cause: cause})
	}
}

// refused reports that the loop did not admit the registration.
func (r *registration) refused(err error) {
	if r.ch != nil {
		r.ch.fire(chEvent{ev: sm.ChannelEventClose, cause: err})
	} else {
		r.ln.fire(lnEvent{ev: sm.ListenerEventClose, cause: err})
	}
}

// register asks the loop to admit r; the loop's table decides.
func (l *Loop) register(r *registration) error {
	r.loop = l
	return l.submit(request{kind: reqRegister, reg: r})
}

// admit performs admitChannel: a slot, the descriptor in the poller with no
// interest yet, and the result to the machine as registered.
func (l *Loop) admit(r *registration) {
	var slot uint32
	if n := len(l.free); n > 0 {
		slot = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		slot = uint32(len(l.slots))
		l.slots = append(l.slots, regSlot{})
	}
	s := &l.slots[slot]
	s.gen++
	s.reg = r
	r.slot, r.gen = slot, s.gen
	l.registered.Add(1)
	if r.ch != nil && r.ch.conn {
		l.conns++
	}
	err := l.poller.Add(r.fd.Fd(), r.token(), false, false)
	out := sockets.ClassifyPollerControl(err)
	if l.pollerLost(err) {
		// The descriptor is ours and fine; the poller is what failed. Its
		// table closes it as it would any other failed registration.
		out = sm.PollerControlResultOtherError
	}
	if r.ch != nil {
		r.ch.fire(chEvent{ev: sm.ChannelEventRegistered, out: uint8(out), cause: err})
	} else {
		r.ln.fire(lnEvent{ev: sm.ListenerEventRegistered, out: uint8(out), cause: err})
	}
}

// pollerLost reports whether err, an EBADF from a change on the poller for
// one descriptor, came from the poller itself: epoll_ctl and kevent answer
// EBADF for either. The poller's probe tells: when it answers EBADF too, the
// loop's table hears pollerLost (the abnormal path, D2 for the poller), and the
// change's result is not the descriptor's, which stays ours to close.
func (l *Loop) pollerLost(err error) bool {
	if err == nil || sockets.ClassifyPollerControl(err) != sm.PollerControlResultDescriptorInvalid {
		return false
	}
	perr := l.poller.Probe()
	if sockets.ClassifyPollerControl(perr) != sm.PollerControlResultDescriptorInvalid {
		return false
	}
	l.feed(loopEvent{ev: sm.EventloopEventPollerLost, cause: fmt.Errorf("loop: the poller's descriptor %d was invalidated outside the loop: %w", l.poller.FD(), os.NewSyscallError(pollControlCall, perr))})
	return true
}

// leave performs leaveLoop: the registration leaves the registry, which tells the
// loop whether it was the last.
func (l *Loop) leave(r *registration) {
	if r.slot < uint32(len(l.slots)) && l.slots[r.slot].reg == r {
		s := &l.slots[r.slot]
		s.reg = nil
		s.gen++ // late events of this registration are stale now
		l.free = append(l.free, r.slot)
	}
	l.registered.Add(-1)
	if r.ch != nil && r.ch.conn {
		l.conns--
	}
	l.feed(loopEvent{ev: sm.EventloopEventChannelClosed}) // or the last: step decides
}

// lookup returns the registration an event's token names, or nil when it is
// stale.
func (l *Loop) lookup(token uint64) *registration {
	slot, gen := uint32(token>>32), uint32(token)
	if slot >= uint32(len(l.slots)) {
		return nil
	}
	if s := &l.slots[slot]; s.gen == gen {
		return s.reg
	}
	return nil
}

// stale makes the late events of r's registration stale, keeping its slot
// until it leaves (D3): after forgetFD the number may be reused by anyone.
func (l *Loop) stale(r *registration) {
	if r.slot < uint32(len(l.slots)) && l.slots[r.slot].reg == r {
		l.slots[r.slot].gen++
	}
}

// regSlot is one slot of the registry: a registration and its generation, kept
// together so that an event's lookup touches one cache line.
type regSlot struct {
	reg *registration
	gen uint32
}

func (l *Loop) eachRegistration(fn func(*registration)) {
	regs := make([]*registration, 0, l.registered.Load())
	for _, s := range l.slots {
		if s.reg != nil {
			regs = append(regs, s.reg)
		}
	}
	for _, r := range regs {
		fn(r)
	}
}

// interest sets a registration's poller interest; a failure goes back to its
// machine as pollerControlFailed.
func (r *registration) interest(read, write bool) error {
	if r.read == read && r.write == write {
		return nil
	}
	r.read, r.write = read, write
	if r.fd.Gone() {
		// An earlier action of the same row was told EBADF for the number;
		// that result is on its way to the table, and no call may follow (D2).
		return sockets.ErrClosed
	}
	return r.loop.poller.Modify(r.fd.Fd(), r.token(), read, write)
}

// timer is a deadline on the loop; time reaches the machines as events.
type timer struct {
	when  time.Time
	fn    func()
	index int
	dead  bool
}

func (t *timer) fire() {
	if !t.dead {
		t.fn()
	}
}

type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when.Before(h[j].when) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *timerHeap) Push(x any)        { t := x.(*timer); t.index = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

func (h *timerHeap) next() *timer {
	for len(*h) > 0 && (*h)[0].dead {
		heap.Pop(h)
	}
	if len(*h) == 0 {
		return nil
	}
	return (*h)[0]
}

func (h *timerHeap) pop() *timer { return heap.Pop(h).(*timer) }

// after starts a timer on the loop goroutine.
func (l *Loop) after(d time.Duration, fn func()) *timer {
	t := &timer{when: l.opts.Clock.Now().Add(d), fn: fn}
	heap.Push(&l.timers, t)
	return t
}

// cancel stops a timer; it is removed lazily.
func (l *Loop) cancel(t *timer) {
	if t != nil {
		t.dead = true
	}
}

// events is a machine's queue of events raised while its actions run: they are
// delivered after the current action list, in order (statemachine's duties),
// except a syscall's result, which is delivered next (raiseResult).
type events[E any] struct {
	queue []E
	next  int // where the event after the one being stepped sits in queue
	busy  bool
}

// fire delivers e with step, or queues it when a step is under way; it returns
// the error step returned for e itself when e was delivered at once. e itself
// does not go through the queue: only the events its actions raise do.
func (q *events[E]) fire(e E, step func(E) error) error {
	if q.busy {
		q.queue = append(q.queue, e)
		return nil
	}
	q.busy = true
	q.next = 0
	finished := false
	defer func() {
		q.busy = false
		q.next = 0
		if !finished {
			// A step panicked (a runtime fault, which fails the loop): drop the
			// queue rather than deliver its events, some already delivered, again.
			clear(q.queue)
			q.queue = q.queue[:0]
		}
	}()
	first := step(e)
	if len(q.queue) == 0 {
		finished = true
		return first
	}
	// Index, not reslice: the queue's array is reused from one event to the next
	// instead of being reallocated as its front is consumed.
	var zero E
	for i := 0; i < len(q.queue); i++ {
		q.next = i + 1
		step(q.queue[i])
		q.queue[i] = zero // one by one: clear would cost a runtime call
	}
	q.queue = q.queue[:0]
	finished = true
	return first
}

// run delivers the queued events with step when no step is under way (they
// were raised from outside one).
func (q *events[E]) run(step func(E) error) {
	if q.busy || len(q.queue) == 0 {
		return
	}
	var zero E
	e := q.queue[0]
	copy(q.queue, q.queue[1:])
	q.queue[len(q.queue)-1] = zero
	q.queue = q.queue[:len(q.queue)-1]
	q.fire(e, step)
}

// queued reports whether an event still to be delivered matches.
func (q *events[E]) queued(match func(E) bool) bool {
	for _, e := range q.queue[q.next:] {
		if match(e) {
			return true
		}
	}
	return false
}

// raise queues an event for after the current action list.
func (q *events[E]) raise(e E) { q.queue = append(q.queue, e) }

// raiseResult queues the result of a syscall the current action list made, to
// be delivered right after that list, before the events queued
// earlier: none of them may issue another syscall on the descriptor before its
// table has heard this result (an EBADF, say, after which the number is not
// ours to touch).
//
// Results raised by one action list keep their order among themselves.
func (q *events[E]) raiseResult(e E) {
	q.queue = append(q.queue, e)
	if i := q.next; i < len(q.queue)-1 {
		// Move it to i by hand: slices.Insert costs a generic call per result.
		copy(q.queue[i+1:], q.queue[i:len(q.queue)-1])
		q.queue[i] = e
	}
	q.next++
}
