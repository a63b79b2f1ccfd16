package loop

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests of a Conn stepping its channel on its own goroutine while the
// loop waits in its poller (beginInline): where each step is taken is read
// from the goroutine's stack in Options.Trace, which every transition calls.

// stepSite is one traced transition and where it was taken.
type stepSite struct {
	machine, event string
	actions        []string
	inline         bool // on a Conn's goroutine, inside writeInline or stepInline
	onLoop         bool // on the loop's goroutine, inside Loop.run
}

// siteTrace records where each transition of a loop is taken.
type siteTrace struct {
	mu    sync.Mutex
	steps []stepSite
	panic func(Step) bool // if set and true for a step, Trace panics there
}

func (s *siteTrace) trace(st Step) {
	buf := make([]byte, 64<<10)
	stack := string(buf[:runtime.Stack(buf, false)])
	site := stepSite{
		machine: st.Machine,
		event:   st.Event,
		actions: st.Actions,
		inline:  strings.Contains(stack, "loop.(*Channel).writeInline") || strings.Contains(stack, "loop.(*Channel).stepInline"),
		onLoop:  strings.Contains(stack, "loop.(*Loop).run"),
	}
	s.mu.Lock()
	s.steps = append(s.steps, site)
	p := s.panic
	s.mu.Unlock()
	if p != nil && p(st) {
		panic("trace panics on " + st.Event)
	}
}

// since returns the steps recorded from index i on, and the next index.
func (s *siteTrace) since(i int) ([]stepSite, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stepSite(nil), s.steps[i:]...), len(s.steps)
}

func (s *siteTrace) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.steps)
}

// find returns the first of steps with that machine and event.
func find(steps []stepSite, machine, event string) (stepSite, bool) {
	for _, s := range steps {
		if s.machine == machine && s.event == event {
			return s, true
		}
	}
	return stepSite{}, false
}

func countSteps(steps []stepSite, machine, event string) int {
	n := 0
	for _, s := range steps {
		if s.machine == machine && s.event == event {
			n++
		}
	}
	return n
}

// waitIdle returns once l waits in its poller with nothing ready: a loop that
// parks (it serves a Conn on the system's epoll) shows so in the goroutine
// dump, which it does only after a poll found nothing; any other loop has its
// lock free. Nothing in these tests wakes it before their next call on the
// Conn.
func waitIdle(t *testing.T, l *Loop) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !l.turn.TryLock() {
		if time.Now().After(deadline) {
			t.Fatal("the loop never went back to its wait")
		}
		time.Sleep(time.Millisecond)
	}
	parks := l.parker != nil && l.conns > 0 // loop state, read under its lock
	l.turn.Unlock()
	if parks {
		loopWaitsIn(t, true)
	}
}

// inlinePair returns a ListenConn Conn on a one-loop group with opts and its
// client, a net.Conn.
func inlinePair(t *testing.T, opts *Options) (*Group, *Conn, net.Conn) {
	t.Helper()
	g := NewGroup(1, opts)
	ln, err := g.ListenConn(loopback)
	if err != nil {
		g.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); g.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return g, c.(*Conn), client
}

// TestConnStepsInlineWhileTheLoopWaits: on the system's poller, a Write made
// while the loop waits is queued, written and completed by the table's steps
// taken on the writer's goroutine; a Read that finds nothing takes no step,
// and the bytes that arrive later are read by the loop.
func TestConnStepsInlineWhileTheLoopWaits(t *testing.T) {
	checkFDs(t)
	tr := &siteTrace{}
	g, c, client := inlinePair(t, &Options{Trace: tr.trace})
	l := g.Loops()[0]

	waitIdle(t, l)
	from := tr.len()
	if n, err := c.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	steps, _ := tr.since(from)
	for _, ev := range []string{"writeQueued(withinHigh)", "wrote(drained)"} {
		s, ok := find(steps, "channel", ev)
		if !ok {
			t.Fatalf("no %s step after the Write: %+v", ev, steps)
		}
		if !s.inline || s.onLoop {
			t.Errorf("%s was taken inline=%v, on the loop=%v; want it on the writer's goroutine", ev, s.inline, s.onLoop)
		}
	}
	got := make([]byte, 5)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "hello" {
		t.Fatalf("the client read %q, %v", got, err)
	}

	waitIdle(t, l)
	from = tr.len()
	type result struct {
		s   string
		err error
	}
	read := make(chan result, 1)
	go func() {
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		read <- result{string(buf[:n]), err}
	}()
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-read:
		if r.s != "x" || r.err != nil {
			t.Fatalf("Read = %q, %v", r.s, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Read never returned")
	}
	steps, _ = tr.since(from)
	if s, ok := find(steps, "channel", "readRequest"); ok {
		t.Errorf("the Read asked for a read cycle (%+v): a Conn's channel reads on its own", s)
	}
	if s, ok := find(steps, "channel", "read(dataShort)"); !ok || !s.onLoop || s.inline {
		t.Errorf("read(dataShort) = %+v (found %v), want it on the loop", s, ok)
	}
}

// countActions counts the actions named action in steps of the channel.
func countActions(steps []stepSite, action string) int {
	n := 0
	for _, s := range steps {
		if s.machine == "channel" {
			for _, a := range s.actions {
				if a == action {
					n++
				}
			}
		}
	}
	return n
}

// TestConnKeepsReadInterestArmed: request after request, a Conn's read
// interest stays as its activation armed it: no interest change per Read, as
// the standard library's poller makes none.
func TestConnKeepsReadInterestArmed(t *testing.T) {
	checkFDs(t)
	tr := &siteTrace{}
	_, c, client := inlinePair(t, &Options{Trace: tr.trace})
	buf := make([]byte, 4)
	for i := range 20 {
		if _, err := client.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("request %d: Read %q, %v", i, buf, err)
		}
		if _, err := c.Write([]byte("pong")); err != nil {
			t.Fatal(err)
		}
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong" {
			t.Fatalf("request %d: the client read %q, %v", i, buf, err)
		}
	}
	steps, _ := tr.since(0)
	if n := countActions(steps, "armRead"); n != 1 {
		t.Errorf("armRead %d times over 20 requests, want once (activation)", n)
	}
	if n := countActions(steps, "disarmRead"); n != 0 {
		t.Errorf("disarmRead %d times over 20 requests, want none", n)
	}
	if n := countSteps(steps, "channel", "readRequest"); n != 0 {
		t.Errorf("%d readRequest steps, want none", n)
	}
}

// TestConnPausesReadingWhenItsBufferIsFull: a Conn nobody reads from stops
// its channel's reading once connReadLimit bytes wait in its buffer, so the
// buffer never holds more than the limit and one read cycle; Reads resume it,
// and every byte arrives once, in order. Under the system's poller and under
// another (whose resumeRead is taken on the loop).
func TestConnPausesReadingWhenItsBufferIsFull(t *testing.T) {
	for _, other := range []bool{false, true} {
		name := "epoll"
		if other {
			name = "other-poller"
		}
		t.Run(name, func(t *testing.T) {
			checkFDs(t)
			tr := &siteTrace{}
			opts := &Options{Trace: tr.trace}
			if other {
				opts.NewPoller = func() (Poller, error) {
					p, err := NewPoller()
					if err != nil {
						return nil, err
					}
					return wrappedPoller{p}, nil
				}
			}
			g, c, client := inlinePair(t, opts)
			lo := g.Loops()[0].opts
			bound := connReadLimit + lo.ReadBudget*lo.ReadBufferSize
			const total = 16 << 20
			sent := make(chan error, 1)
			go func() {
				b := make([]byte, 64<<10)
				for off := 0; off < total; off += len(b) {
					for i := range b {
						b[i] = byte((off + i) % 251)
					}
					if _, err := client.Write(b); err != nil {
						sent <- err
						return
					}
				}
				sent <- nil
			}()
			buffered := func() int {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(c.buf) - c.off
			}
			// Nobody reads: the channel pauses, and the buffer stays bounded.
			deadline := time.Now().Add(10 * time.Second)
			for {
				if n := buffered(); n > bound {
					t.Fatalf("%d bytes buffered, more than the limit and one cycle (%d)", n, bound)
				}
				steps, _ := tr.since(0)
				if _, ok := find(steps, "channel", "pauseRead"); ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the channel never paused reading")
				}
				time.Sleep(time.Millisecond)
			}
			for range 50 {
				if n := buffered(); n > bound {
					t.Fatalf("%d bytes buffered while paused, more than %d", n, bound)
				}
				time.Sleep(time.Millisecond)
			}
			got := make([]byte, 32<<10)
			for off := 0; off < total; {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, err := c.Read(got)
				if err != nil {
					t.Fatalf("Read at %d: %v", off, err)
				}
				for i := range n {
					if got[i] != byte((off+i)%251) {
						t.Fatalf("byte %d is %d, want %d", off+i, got[i], byte((off+i)%251))
					}
				}
				off += n
				if n := buffered(); n > bound {
					t.Fatalf("%d bytes buffered, more than %d", n, bound)
				}
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			steps, _ := tr.since(0)
			pauses, resumes := countSteps(steps, "channel", "pauseRead"), countSteps(steps, "channel", "resumeRead")
			if resumes == 0 || pauses < resumes {
				t.Fatalf("%d pauseRead and %d resumeRead steps", pauses, resumes)
			}
			for _, s := range steps {
				if other && s.inline {
					t.Fatalf("%s taken inline under another poller", s.event)
				}
			}
			t.Logf("%d pauses, %d resumes over %d MiB", pauses, resumes, total>>20)
		})
	}
}

// wrappedPoller is the system's poller behind another type: a Poller held to
// the interface's contract, as a fault injector's or a simulator's is.
type wrappedPoller struct{ Poller }

// TestConnStepsOnTheLoopUnderAnotherPoller: a poller that is not the
// system's own gets no interest change while it waits, so every step of a
// Conn's channel is the loop's.
func TestConnStepsOnTheLoopUnderAnotherPoller(t *testing.T) {
	checkFDs(t)
	tr := &siteTrace{}
	newPoller := func() (Poller, error) {
		p, err := NewPoller()
		if err != nil {
			return nil, err
		}
		return wrappedPoller{p}, nil
	}
	g, c, client := inlinePair(t, &Options{Trace: tr.trace, NewPoller: newPoller})
	for range 3 {
		waitIdle(t, g.Loops()[0])
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(client, got); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Write([]byte("pong")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "pong" {
			t.Fatalf("Read %q, %v", got, err)
		}
	}
	steps, _ := tr.since(0)
	for _, s := range steps {
		if s.inline || !s.onLoop {
			t.Fatalf("%s %s was taken off the loop (inline=%v)", s.machine, s.event, s.inline)
		}
	}
}

// TestConnInlineFailureReachesTheLoopInOrder: a Write taken inline that finds
// its descriptor invalidated ends the channel there (D2: contained, nothing
// closed), and the loop's table hears the channel leave on the loop's
// goroutine, after the channel's last step; the loop goes on serving.
func TestConnInlineFailureReachesTheLoopInOrder(t *testing.T) {
	checkFDs(t)
	tr := &siteTrace{}
	g, c, _ := inlinePair(t, &Options{Trace: tr.trace})
	l := g.Loops()[0]
	waitIdle(t, l)
	from := tr.len()
	if err := unix.Close(c.Channel().reg.fd.Fd()); err != nil { // the out-of-band close
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("to a number that is no longer ours")); !errors.Is(err, unix.EBADF) {
		t.Fatalf("Write = %v, want EBADF", err)
	}
	wait(t, c.Channel().Closed(), "the channel failing")
	if n := l.Counters().DescriptorsContained.Load(); n != 1 {
		t.Fatalf("DescriptorsContained = %d, want 1", n)
	}
	var steps []stepSite
	deadline := time.Now().Add(5 * time.Second)
	for {
		steps, _ = tr.since(from)
		if _, ok := find(steps, "eventloop", "channelClosed"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the loop never heard the channel leave: %+v", steps)
		}
		time.Sleep(time.Millisecond)
	}
	failed, last := -1, -1
	for i, s := range steps {
		switch {
		case s.machine == "channel" && s.event == "wrote(descriptorInvalid)":
			failed = i
			if !s.inline {
				t.Errorf("the failed write's result was not heard on the writer's goroutine")
			}
		case s.machine == "eventloop" && s.event == "channelClosed":
			last = i
			if s.inline || !s.onLoop {
				t.Errorf("channelClosed was heard off the loop (inline=%v)", s.inline)
			}
		}
	}
	if failed < 0 || last < failed {
		t.Fatalf("wrote(descriptorInvalid) at %d, channelClosed at %d: %+v", failed, last, steps)
	}
	if n := l.Stats().Registered; n != 1 {
		t.Fatalf("Registered = %d, want 1 (the listener)", n)
	}
	if err := echoClient(serveEcho(t, g, loopback).Addr(), 3); err != nil {
		t.Fatalf("the loop stopped serving: %v", err)
	}
}

// TestConnInlineRuntimeFaultFailsTheLoop: a panic of the runtime in a step
// taken inline is the loop's runtime fault, as it is on the loop: the loop
// fails and says why, the process goes on, and the write the step held fails
// once.
func TestConnInlineRuntimeFaultFailsTheLoop(t *testing.T) {
	checkFDs(t)
	tr := &siteTrace{}
	g, c, _ := inlinePair(t, &Options{Trace: tr.trace})
	l := g.Loops()[0]
	waitIdle(t, l)
	tr.mu.Lock()
	tr.panic = func(s Step) bool { return s.Machine == "channel" && s.Event == "wrote(drained)" }
	tr.mu.Unlock()
	written := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("the step of this write's result panics"))
		written <- err
	}()
	var err error
	select {
	case err = <-written:
	case <-time.After(10 * time.Second):
		t.Fatal("the Write never returned: its completion was lost or reported twice")
	}
	if err == nil {
		t.Fatal("the Write succeeded; want the loop's failure")
	}
	wait(t, l.Done(), "the loop stopping")
	if err := l.Wait(); !errors.Is(err, ErrLoopFailed) || !strings.Contains(err.Error(), "trace panics on wrote(drained)") {
		t.Fatalf("the loop's cause: %v", err)
	}
	steps, _ := tr.since(0)
	if s, ok := find(steps, "channel", "wrote(drained)"); !ok || !s.inline {
		t.Fatalf("wrote(drained) = %+v (found %v), want it inline", s, ok)
	}
	if n := countSteps(steps, "channel", "writeQueued(withinHigh)"); n != 1 {
		t.Fatalf("the write was queued %d times, want once", n)
	}
	t.Logf("Write: %v", err)
}

// TestConnInlineWriteRetainsNoBuffer: a Write taken inline writes from the
// caller's buffer and copies only what the kernel did not take; once the Write
// has returned (here at its deadline, with bytes still queued), the caller may
// overwrite its buffer, and the peer still reads what was written.
func TestConnInlineWriteRetainsNoBuffer(t *testing.T) {
	checkFDs(t)
	tr := &siteTrace{}
	g, c, client := inlinePair(t, &Options{Trace: tr.trace})
	waitIdle(t, g.Loops()[0])
	buf := make([]byte, 8<<20)
	for i := range buf {
		buf[i] = byte(i % 251)
	}
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := c.Write(buf) // nobody reads: the buffers fill, the deadline passes
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %d, %v; want the deadline", n, err)
	}
	for i := range buf {
		buf[i] = 0xff
	}
	steps, _ := tr.since(0)
	if s, ok := find(steps, "channel", "writeQueued(withinHigh)"); !ok || !s.inline {
		t.Fatalf("the first chunk's writeQueued = %+v (found %v), want it inline", s, ok)
	}
	got := make([]byte, n)
	client.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("the client read: %v", err)
	}
	for i, b := range got {
		if b != byte(i%251) {
			t.Fatalf("byte %d of %d is %#x, want %#x: the write kept the caller's buffer", i, n, b, byte(i%251))
		}
	}
}

// loopWaitsIn returns once the dump shows the loop's goroutine waiting in
// the way wanted: parked in the runtime's poller ("IO wait" in parkedWait)
// or blocked in epoll_wait ("syscall").
func loopWaitsIn(t *testing.T, parked bool) {
	t.Helper()
	awaitGoroutine(t, fmt.Sprintf("of the loop waiting parked=%v", parked), func(g string) bool {
		if !strings.Contains(g, "loop.(*Loop).run") || !strings.Contains(g, "loop.(*epoller).Wait") {
			return false
		}
		if parked {
			return isParkedWait(g)
		}
		return strings.Contains(g, "[syscall") && !strings.Contains(g, "parkedWait")
	})
}

// TestLoopParksWhileServingConns: a loop serving a Conn waits parked in the
// runtime's poller, so that the Conn goroutines it wakes get its P at once;
// once no Conn is left it blocks its thread in epoll_wait again, as a loop
// serving only Handlers does.
func TestLoopParksWhileServingConns(t *testing.T) {
	checkFDs(t)
	_, c, client := inlinePair(t, nil)
	loopWaitsIn(t, true)
	c.Close()
	client.Close()
	wait(t, c.Channel().Closed(), "the Conn's channel closing")
	loopWaitsIn(t, false)
}
