package loop

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// countingPoller is the system's poller, counting each registration's Add and
// Remove. A registration is keyed by its token (unique within one loop), not by
// its descriptor, whose number the kernel reuses.
type countingPoller struct {
	Poller
	mu      sync.Mutex
	current map[int]uint64 // descriptor: the token it was added with
	adds    map[uint64]int
	removes map[uint64]int
	errs    []string
}

func newCountingPoller() (*countingPoller, error) {
	p, err := NewPoller()
	if err != nil {
		return nil, err
	}
	return &countingPoller{Poller: p, current: map[int]uint64{}, adds: map[uint64]int{}, removes: map[uint64]int{}}, nil
}

func (p *countingPoller) Add(fd int, token uint64, read, write bool) error {
	p.mu.Lock()
	if _, ok := p.current[fd]; ok {
		p.errs = append(p.errs, "descriptor added again without a remove")
	}
	p.current[fd] = token
	p.adds[token]++
	p.mu.Unlock()
	return p.Poller.Add(fd, token, read, write)
}

func (p *countingPoller) Remove(fd int) error {
	p.mu.Lock()
	token, ok := p.current[fd]
	if !ok {
		p.errs = append(p.errs, "descriptor removed that was not added")
	}
	delete(p.current, fd)
	p.removes[token]++
	p.mu.Unlock()
	return p.Poller.Remove(fd)
}

// TestPollerHookSeesEveryRegistration: a Poller supplied through
// Options.NewPoller is the one the loops use: over an echo run, each loop's
// wrapper sees exactly one Add and one Remove per channel and per listener.
func TestPollerHookSeesEveryRegistration(t *testing.T) {
	checkFDs(t)
	var mu sync.Mutex
	var pollers []*countingPoller
	g := NewGroup(2, &Options{NewPoller: func() (Poller, error) {
		p, err := newCountingPoller()
		if err != nil {
			return nil, err
		}
		mu.Lock()
		pollers = append(pollers, p)
		mu.Unlock()
		return p, nil
	}})
	ln := serveEcho(t, g, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	const conns = 8
	echoOverMany(t, conns, func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) })
	shutdown(t, g)

	mu.Lock()
	defer mu.Unlock()
	if len(pollers) != 2 {
		t.Fatalf("NewPoller called %d times for 2 loops", len(pollers))
	}
	registrations := 0
	for i, p := range pollers {
		for _, e := range p.errs {
			t.Errorf("loop %d: %s", i, e)
		}
		for token, n := range p.adds {
			if n != 1 || p.removes[token] != 1 {
				t.Errorf("loop %d: token %#x added %d times, removed %d times; want once each", i, token, n, p.removes[token])
			}
		}
		for token := range p.removes {
			if p.adds[token] == 0 {
				t.Errorf("loop %d: token %#x removed, never added", i, token)
			}
		}
		if len(p.current) != 0 {
			t.Errorf("loop %d: %d descriptors still registered at the end", i, len(p.current))
		}
		registrations += len(p.adds)
	}
	if want := conns + 1; registrations != want {
		t.Errorf("%d registrations seen, want %d (%d channels and the listener)", registrations, want, conns)
	}
}

// manualClock is a Clock whose time moves only with Advance. Its NewPoller
// gives the system's poller, remembered so that Advance can wake its loop: the
// loop computes its wait from Now, and learns of a new Now only when woken.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*manualTimer
	pollers []*clockedPoller
}

type manualTimer struct {
	when time.Time
	f    func()
	done bool // fired or stopped
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		stopped := !t.done
		t.done = true
		return stopped
	}
}

// Advance moves the time by d, runs the AfterFunc callbacks that came due (each
// in its own goroutine, as time.AfterFunc does) and wakes every loop.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, t := range c.timers {
		if !t.done && !t.when.After(c.now) {
			t.done = true
			due = append(due, t.f)
		}
	}
	pollers := c.pollers
	c.mu.Unlock()
	for _, f := range due {
		go f()
	}
	for _, p := range pollers {
		p.Wake() // ErrPollerClosed once its loop has stopped
	}
}

func (c *manualClock) NewPoller() (Poller, error) {
	p, err := NewPoller()
	if err != nil {
		return nil, err
	}
	cp := &clockedPoller{Poller: p}
	cp.cond = sync.NewCond(&cp.mu)
	c.mu.Lock()
	c.pollers = append(c.pollers, cp)
	c.mu.Unlock()
	return cp, nil
}

func (c *manualClock) poller(i int) *clockedPoller {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pollers[i]
}

// clockedPoller counts the waits begun, so that a test can tell its loop went
// round after a wake.
type clockedPoller struct {
	Poller
	mu    sync.Mutex
	cond  *sync.Cond
	waits int
}

func (p *clockedPoller) Wait(events []PollEvent, timeout time.Duration) (int, error) {
	p.mu.Lock()
	p.waits++
	p.cond.Broadcast()
	p.mu.Unlock()
	return p.Poller.Wait(events, timeout)
}

func (p *clockedPoller) begun() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waits
}

// awaitWait blocks until more than n waits have begun.
func (p *clockedPoller) awaitWait(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.waits <= n {
		p.cond.Wait()
	}
}

// TestDrainTimeoutOnTheLoopsClock: DrainTimeout is measured on Options.Clock.
// A graceful Shutdown whose writes cannot drain (the peer never reads) is
// forced once the manual clock has moved past the 30 s, within real
// milliseconds; 29 s are not enough.
func TestDrainTimeoutOnTheLoopsClock(t *testing.T) {
	checkFDs(t)
	clk := newManualClock()
	start := clk.Now()
	var drainAt, forcedAt time.Time
	var drainWaits int // waits begun when the drain timer was about to start
	drainStarted := make(chan struct{})
	trace := func(s Step) {
		if s.Machine != "eventloop" {
			return
		}
		for _, a := range s.Actions {
			if a == "startDrainTimer" {
				drainAt = clk.Now()
				drainWaits = clk.poller(0).begun()
				close(drainStarted)
			}
		}
		if s.Event == "drainDeadline" {
			forcedAt = clk.Now()
		}
	}
	l := New(&Options{Clock: clk, NewPoller: clk.NewPoller, Trace: trace})
	rec := newRecorder()
	ln, err := l.Listen(mustListen(t), func(net.Addr) (Handler, *ChannelOptions) {
		return rec, &ChannelOptions{HighWatermark: 1 << 30}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	wait(t, rec.active, "OnActive")
	// More than the socket buffers hold: the peer never reads, so it stays queued.
	written := make(chan error, 1)
	onlyChannel(t, l).Write(make([]byte, 32<<20), func(err error) { written <- err })

	began := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- l.Shutdown(context.Background()) }()
	wait(t, drainStarted, "the drain timer")
	p := clk.poller(0)
	// The trace comes before the action: the timer exists once the loop waits again.
	p.awaitWait(drainWaits)

	n := p.begun()
	clk.Advance(29 * time.Second)
	p.awaitWait(n) // the loop went round with the new time
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v after 29 s of a 30 s DrainTimeout", err)
	default:
	}

	clk.Advance(2 * time.Second)
	select {
	case err := <-shut:
		if !errors.Is(err, ErrForced) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown: %v, want ErrForced and context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the clock moved past DrainTimeout")
	}
	if err := <-written; !errors.Is(err, ErrForced) {
		t.Errorf("the queued write completed with %v, want ErrForced", err)
	}
	if real := time.Since(began); real > 5*time.Second {
		t.Errorf("the forced shutdown took %v of real time", real)
	}
	// The trace callback ran on the loop goroutine, which has stopped.
	if drainAt != start {
		t.Errorf("drain timer started at %v, want the clock's start %v", drainAt, start)
	}
	if got := forcedAt.Sub(start); got < 30*time.Second {
		t.Errorf("drain deadline heard %v after the start, want at least DrainTimeout (30 s)", got)
	}
}
