package loop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// recordedStep is a step line of a written recording, parsed.
type recordedStep struct {
	seq  uint64
	step Step
}

// parsedLoop is one loop's part of a written recording.
type parsedLoop struct {
	header    string   // its loop line
	instances []string // its new and old lines
	steps     []recordedStep
}

// parseRecording parses what Recording.WriteTo wrote, failing the test on
// anything out of its format.
func parseRecording(t *testing.T, text string) []parsedLoop {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if lines[0] != "fsmkernel-recording v1" || lines[len(lines)-1] != "end" {
		t.Fatalf("a recording without its header or end line:\n%s", text)
	}
	var loops []parsedLoop
	for _, l := range lines[1 : len(lines)-1] {
		f := strings.Fields(l)
		switch f[0] {
		case "machine":
		case "loop":
			loops = append(loops, parsedLoop{header: l})
		case "new", "old":
			loops[len(loops)-1].instances = append(loops[len(loops)-1].instances, l)
		default:
			seq, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil || len(f) < 6 {
				t.Fatalf("not a step line: %q", l)
			}
			id, _ := strconv.ParseUint(f[2], 10, 64)
			s := Step{Machine: f[1], ID: id, From: f[3], To: f[3], Event: f[4]}
			if f[5] == "rejected" {
				s.Rejected = true
			} else {
				s.To = f[6]
				s.Actions = strings.Fields(strings.Trim(strings.Join(f[7:], " "), "[]"))
			}
			p := &loops[len(loops)-1]
			p.steps = append(p.steps, recordedStep{seq, s})
		}
	}
	return loops
}

func recordingText(t *testing.T, r *Recording) string {
	t.Helper()
	var b bytes.Buffer
	n, err := r.WriteTo(&b)
	if err != nil || n != int64(b.Len()) {
		t.Fatalf("WriteTo: %d, %v; wrote %d bytes", n, err, b.Len())
	}
	return b.String()
}

// stepString renders a step for comparison; an empty action list is nil.
func stepString(s Step) string {
	return fmt.Sprintf("%s %d %s %s -> %s %v rejected=%v", s.Machine, s.ID, s.From, s.Event, s.To, s.Actions, s.Rejected)
}

// echoTraffic runs what the recording tests record on ln's address: echoes
// over connections that close cleanly, one the peer resets, and a dial from
// the loop (a dialed channel) that closes after an echo.
func echoTraffic(t *testing.T, l *Loop, addr net.Addr) {
	t.Helper()
	for i := range 3 {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		if err := echoOnce(c, strings.Repeat("x", 100*(i+1))); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := echoOnce(c, "reset"); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0) // close sends RST
	c.Close()
	connected := make(chan error, 1)
	got := make(chan []byte, 1)
	d, err := l.Dial(addr, readOnce{got: got}, nil, func(err error) { connected <- err })
	if err != nil {
		t.Fatal(err)
	}
	if err := <-connected; err != nil {
		t.Fatal(err)
	}
	d.Write([]byte("dialed"), nil)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the dialed channel read no echo")
	}
	d.Close()
	wait(t, d.Closed(), "the dialed channel's close")
}

// readOnce hands out what its channel reads first.
type readOnce struct {
	NopHandler
	got chan []byte
}

func (h readOnce) OnRead(c *Channel, p []byte) {
	select {
	case h.got <- bytes.Clone(p):
	default:
	}
}

// TestRecordingIsTheTrace: with Record and Trace both on, a loop that serves
// echoes, a reset and a dial records exactly the steps Trace is told of, in
// the same order, numbered 1, 2, ... with every instance introduced by a new
// line (the ring did not wrap) before its first step.
func TestRecordingIsTheTrace(t *testing.T) {
	checkFDs(t)
	var mu sync.Mutex
	var traced []Step
	l := New(&Options{Record: 1 << 12, Trace: func(s Step) {
		mu.Lock()
		traced = append(traced, s)
		mu.Unlock()
	}})
	ln, err := l.Listen(mustListen(t), func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	echoTraffic(t, l, ln.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rec := l.Recording()
	loops := parseRecording(t, recordingText(t, rec))
	if len(loops) != 1 {
		t.Fatalf("%d loops in the recording, want 1", len(loops))
	}
	p := loops[0]
	mu.Lock()
	defer mu.Unlock()
	if want := fmt.Sprintf("loop 0 capacity 4096 first 1 last %d", len(traced)); p.header != want {
		t.Errorf("loop line %q, want %q", p.header, want)
	}
	if len(p.steps) != len(traced) || rec.Steps() != len(traced) {
		t.Fatalf("%d steps recorded (Steps %d), %d traced", len(p.steps), rec.Steps(), len(traced))
	}
	for i, s := range p.steps {
		if s.seq != uint64(i+1) {
			t.Fatalf("step %d is numbered %d", i+1, s.seq)
		}
		if got, want := stepString(s.step), stepString(traced[i]); got != want {
			t.Errorf("step %d: recorded %s, traced %s", i+1, got, want)
		}
	}
	kinds := map[string]int{}
	for _, in := range p.instances {
		f := strings.Fields(in)
		if f[0] != "new" {
			t.Errorf("%q in a recording whose ring did not wrap", in)
		}
		kinds[f[1]]++
	}
	// The loop, the listener, 4 accepted channels, the dialed one and the
	// channel that accepted it.
	if kinds["eventloop"] != 1 || kinds["listener"] != 1 || kinds["channel"] != 6 {
		t.Errorf("instances %v, want 1 eventloop, 1 listener, 6 channels", kinds)
	}
	if !strings.Contains(strings.Join(p.instances, "\n"), "origin=dialed") {
		t.Errorf("no dialed channel among the instances:\n%s", strings.Join(p.instances, "\n"))
	}
}

// TestDumpOnPeerReset: DumpOn hears of the channel its peer reset, with the
// error Err then returns, and gets the loop's recording ending with that
// channel's last step; channels that close cleanly are not its business.
func TestDumpOnPeerReset(t *testing.T) {
	checkFDs(t)
	type call struct {
		ch  *Channel
		err error
	}
	var calls []call
	var dump bytes.Buffer
	l := New(&Options{Record: 256, DumpOn: func(ch *Channel, err error) io.Writer {
		calls = append(calls, call{ch, err}) // on the loop goroutine
		return &dump
	}})
	ln, err := l.Listen(mustListen(t), func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	echoTraffic(t, l, ln.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 {
		t.Fatalf("DumpOn called %d times, want once (for the reset)", len(calls))
	}
	c := calls[0]
	if !errors.Is(c.err, syscall.ECONNRESET) || c.ch.Err() != c.err {
		t.Fatalf("DumpOn told %v; the channel's Err is %v; want ECONNRESET, the same", c.err, c.ch.Err())
	}
	loops := parseRecording(t, dump.String())
	steps := loops[0].steps
	last := steps[len(steps)-1].step
	if last.Machine != "channel" || last.ID != c.ch.ID() || last.To != "closed" {
		t.Errorf("the dump ends with %s, want channel %d's step into closed", stepString(last), c.ch.ID())
	}
	reset := false
	for _, s := range steps {
		reset = reset || (s.step.ID == c.ch.ID() && strings.HasSuffix(s.step.Event, "(reset)"))
	}
	if !reset {
		t.Errorf("the dump holds no reset of channel %d:\n%s", c.ch.ID(), dump.String())
	}
}

// TestRecordingWraps: a ring smaller than the run keeps the last steps; its
// loop line says it wrapped and where its steps start, the instances that
// began before that are old, and one registered since is new, with its
// options.
func TestRecordingWraps(t *testing.T) {
	checkFDs(t)
	l := New(&Options{Record: 12}) // rounded up to 16
	ln, err := l.Listen(mustListen(t), func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	echoTraffic(t, l, ln.Addr())
	_, ch := pairOnLoop(t, l, echo{}, &ChannelOptions{HalfClosure: true})
	ch.Close()
	wait(t, ch.Closed(), "the last channel's close")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	p := parseRecording(t, recordingText(t, l.Recording()))[0]
	if len(p.steps) != 16 {
		t.Fatalf("%d steps kept, want 16", len(p.steps))
	}
	first, last := p.steps[0].seq, p.steps[15].seq
	if want := fmt.Sprintf("loop 0 capacity 16 first %d last %d wrapped", first, last); p.header != want || last != first+15 || first < 2 {
		t.Errorf("loop line %q; steps %d to %d", p.header, first, last)
	}
	if !slices.Contains(p.instances, "old eventloop 0") {
		t.Errorf("no old eventloop 0 among the instances %q", p.instances)
	}
	if want := fmt.Sprintf("new channel %d origin=accepted autoRead=true halfClosure=true backpressure=true ebadfPolicy=contain panicPolicy=contain", ch.ID()); !slices.Contains(p.instances, want) {
		t.Errorf("no %q among the instances %q", want, p.instances)
	}
}

// TestRecordingOff: a loop that records nothing gives a recording with no
// steps, which says so.
func TestRecordingOff(t *testing.T) {
	l := New(nil)
	defer l.Close()
	text := recordingText(t, l.Recording())
	if !strings.HasSuffix(text, "\nloop 0 capacity 0 first 1 last 0\nend\n") || l.Recording().Steps() != 0 {
		t.Errorf("recording of a loop that records nothing:\n%s", text)
	}
}

// TestRecordOptions: Record may not be negative, and DumpOn needs it.
func TestRecordOptions(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Record: -1}, "loop: Options.Record -1 is negative"},
		{Options{DumpOn: func(*Channel, error) io.Writer { return nil }}, "loop: Options.DumpOn is set but Options.Record is 0: there is nothing to dump"},
	} {
		if err := c.o.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate: %v, want %q", err, c.want)
		}
	}
}

// TestDumpOnPanicIsContained: a panic in DumpOn (or its writer) is counted
// and goes no further: the channel still ends with its error, the loop serves
// on.
func TestDumpOnPanicIsContained(t *testing.T) {
	checkFDs(t)
	l := New(&Options{Record: 64, DumpOn: func(*Channel, error) io.Writer { panic("dump") }})
	defer l.Close()
	_, ch := pairOnLoop(t, l, echo{}, nil)
	ch.Close()
	wait(t, ch.Closed(), "the channel's close")
	if n := l.Counters().PanicsContained.Load(); n != 0 || ch.Err() != nil {
		t.Fatalf("a clean close (Err %v): %d panics contained, want 0", ch.Err(), n)
	}
	// A handler that panics fails its channel: the panic and DumpOn's.
	peer, ch := pairOnLoop(t, l, panicOnRead{}, nil)
	unix.Write(peer, []byte("x"))
	wait(t, ch.Closed(), "the failed channel's close")
	if ch.Err() == nil {
		t.Fatal("the channel whose handler panicked closed cleanly")
	}
	if n := l.Counters().PanicsContained.Load(); n != 2 {
		t.Errorf("%d panics contained, want the handler's and DumpOn's", n)
	}
	ln, err := l.Listen(mustListen(t), func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := echoClient(ln.Addr(), 3); err != nil {
		t.Fatalf("the loop after DumpOn panicked: %v", err)
	}
}

type panicOnRead struct{ NopHandler }

func (panicOnRead) OnRead(*Channel, []byte) { panic("read") }

// TestRecordingWhileServing takes recordings while the loops of a group
// serve: each is consistent (steps numbered without a gap) and taking them
// races with nothing (go test -race).
func TestRecordingWhileServing(t *testing.T) {
	checkFDs(t)
	g := NewGroup(2, &Options{Record: 64})
	ln := serveEcho(t, g, loopback)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, p := range parseRecording(t, recordingText(t, g.Recording())) {
				for i := 1; i < len(p.steps); i++ {
					if p.steps[i].seq != p.steps[i-1].seq+1 {
						t.Errorf("steps %d then %d", p.steps[i-1].seq, p.steps[i].seq)
						return
					}
				}
			}
		}
	}()
	echoClients(t, ln.Addr(), 8)
	close(done)
	wg.Wait()
	shutdown(t, g)
	if n := len(parseRecording(t, recordingText(t, g.Recording()))); n != 2 {
		t.Errorf("%d loops in the group's recording, want 2", n)
	}
}

// TestRecordingSkipsRefusedRegistrations: a channel a stopped loop refuses
// closes on the caller's goroutine, outside the loop: it is not recorded.
func TestRecordingSkipsRefusedRegistrations(t *testing.T) {
	checkFDs(t)
	l := New(&Options{Record: 64})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	before := l.Recording().Steps()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	fd, err := sockets.AdoptFD(fds[0], nil)
	unix.Close(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Register(fd, NopHandler{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register on a stopped loop: %v", err)
	}
	if after := l.Recording().Steps(); after != before {
		t.Errorf("%d steps recorded after the refused registration, %d before", after, before)
	}
}

// TestEchoRecordedAllocatesNothing: recording on, an echo still allocates
// nothing.
func TestEchoRecordedAllocatesNothing(t *testing.T) {
	checkFDs(t)
	l := New(&Options{Record: 1024})
	defer l.Close()
	peer, _ := pairOnLoop(t, l, copyEcho{}, nil)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 64)
	got := make([]byte, len(msg))
	roundTrip(t, peer, msg, got)
	if allocs := testing.AllocsPerRun(500, func() { roundTrip(t, peer, msg, got) }); allocs != 0 {
		t.Errorf("%.2f allocations per recorded echo, want 0", allocs)
	}
}
