// Command chaos runs an echo workload on fsmkernel's event loops while a fault
// injector (looptest.Injector) corrupts the server's system calls, and reports what
// the runtime survived.
//
// The server is a Group serving an echo Handler through the injector's Options.
// Its reads, writes, accepts, closes and poller waits are disturbed at random
// from -seed: spurious readable notifications and spurious EOF hints (the read
// that follows says EAGAIN), EAGAIN although data is there, EINTR, short reads
// and writes, EMFILE, ENFILE and ENOBUFS on accept (the listener throttles), and
// EINTR or EBADF from close. Now and then, on a random server channel, a read
// or write says ECONNRESET or EPIPE, or EBADF after the injector really closed
// the descriptor behind the runtime's back: those channels fail by policy (D2 in
// docs/design.md: the EBADF is contained and the number never touched again) and their clients reconnect.
//
// The clients use plain net.Dial, not the injector. Each connection sends a
// stream of pseudo-random bytes (its first 8 bytes name the connection) and
// checks every byte of the echo, in order, as it comes back. When the time is
// up the clients stop sending, wait for the rest of their echo and close.
//
// Bytes a killed connection had sent without getting their echo are "in flight
// when killed": the fault took them. Bytes a surviving connection sent whose
// echo never came back, or came back different, are lost; so are the
// unconfirmed bytes of a connection that died although the server never saw an
// injected fault on its channel. chaos prints the truth and exits 1 if any byte
// was lost, if a connection died without an injected fault, or if a loop or the
// listener stopped before the end.
//
// Usage:
//
//	chaos [-duration 3s] [-seed n] [-conns 16] [-network tcp|unix] [-loops 4] [-drain 5s]
//
// The same server and the same account also run on the simulated kernel of
// package looptest, where the clients are simulated peers, time is virtual and
// the faults come from a named profile (vsock, hostile, exhausted, linux,
// quiet); every choice comes from the seed, so a run, and the report it
// prints, is the same each time. A simulation runs in a testing/synctest
// bubble, so that mode runs under go test:
//
//	go test ./examples/chaos -run TestChaosSimulated -v -chaos.seed=7 -chaos.profile=vsock
//
// Exit status: 0 when nothing was lost, 1 otherwise, 2 on a usage error.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the parsed command line.
type config struct {
	duration time.Duration
	seed     uint64
	conns    int
	loops    int
	network  string
	drain    time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	ok, err := chaos(cfg, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&cfg.duration, "duration", 3*time.Second, "how long the clients send")
	fs.Uint64Var(&cfg.seed, "seed", 0, "seed of the injector and the clients (0: a random one, printed)")
	fs.IntVar(&cfg.conns, "conns", 16, "concurrent client connections")
	fs.IntVar(&cfg.loops, "loops", 4, "the server group's loops")
	fs.StringVar(&cfg.network, "network", "tcp", "tcp or unix")
	fs.DurationVar(&cfg.drain, "drain", 5*time.Second, "after the end, how long a connection may wait for more of its echo before its bytes count as lost")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch cfg.network {
	case "tcp", "unix":
	default:
		return cfg, fmt.Errorf("-network %q: want tcp or unix", cfg.network)
	}
	if cfg.duration <= 0 || cfg.drain <= 0 || cfg.conns < 1 || cfg.loops < 1 {
		return cfg, errors.New("-duration and -drain must be positive, -conns and -loops at least 1")
	}
	if cfg.seed == 0 {
		cfg.seed = rand.Uint64()
	}
	return cfg, nil
}

// The faults injected all along, at modest probabilities. Kill rules are added
// over time by scheduleKills.
func backgroundRules() []looptest.Rule {
	return []looptest.Rule{
		{Op: looptest.OpPollerWait, Fault: looptest.FaultSpuriousReadable, Probability: 0.05},
		{Op: looptest.OpPollerWait, Fault: looptest.FaultSpuriousEOFHint, Probability: 0.02},
		{Op: looptest.OpPollerWait, Fault: looptest.FaultEINTR, Probability: 0.01},
		{Op: looptest.OpRead, Fault: looptest.FaultEAGAIN, Probability: 0.05},
		{Op: looptest.OpRead, Fault: looptest.FaultEINTR, Probability: 0.05},
		{Op: looptest.OpRead, Fault: looptest.FaultShort, Probability: 0.10},
		{Op: looptest.OpWrite, Fault: looptest.FaultEAGAIN, Probability: 0.05},
		{Op: looptest.OpWrite, Fault: looptest.FaultEINTR, Probability: 0.05},
		{Op: looptest.OpWrite, Fault: looptest.FaultShort, Probability: 0.10},
		{Op: looptest.OpAccept, Fault: looptest.FaultEMFILE, Every: 4},
		{Op: looptest.OpAccept, Fault: looptest.FaultENFILE, Probability: 0.05},
		{Op: looptest.OpAccept, Fault: looptest.FaultENOBUFS, Probability: 0.05},
		{Op: looptest.OpAccept, Fault: looptest.FaultEAGAIN, Probability: 0.05},
		{Op: looptest.OpAccept, Fault: looptest.FaultEINTR, Probability: 0.05},
		{Op: looptest.OpClose, Fault: looptest.FaultEINTR, Probability: 0.2},
		{Op: looptest.OpClose, Fault: looptest.FaultEBADF, Probability: 0.1},
	}
}

// kills are the faults that fail a channel, one of which is armed at each step
// of scheduleKills: it hits one random server channel's next read or write.
var kills = []looptest.Rule{
	{Op: looptest.OpRead, Fault: looptest.FaultECONNRESET},
	{Op: looptest.OpWrite, Fault: looptest.FaultEPIPE},
	{Op: looptest.OpRead, Fault: looptest.FaultEBADF},
	{Op: looptest.OpWrite, Fault: looptest.FaultECONNRESET},
	{Op: looptest.OpWrite, Fault: looptest.FaultEBADF},
	{Op: looptest.OpRead, Fault: looptest.FaultEBADF},
}

// faultOrder is the order faults are printed in: every fault the rules use.
var faultOrder = []looptest.Fault{
	looptest.FaultSpuriousReadable, looptest.FaultSpuriousEOFHint, looptest.FaultEAGAIN, looptest.FaultEINTR,
	looptest.FaultShort, looptest.FaultECONNRESET, looptest.FaultEPIPE, looptest.FaultEBADF,
	looptest.FaultEMFILE, looptest.FaultENFILE, looptest.FaultENOBUFS,
}

// scheduleKills arms the kill rules one by one, evenly over d, until stop.
func scheduleKills(inj *looptest.Injector, d time.Duration, stop <-chan struct{}) {
	step := d / time.Duration(len(kills)+1)
	for _, k := range kills {
		select {
		case <-stop:
			return
		case <-time.After(step):
		}
		k.Probability, k.Count = 0.01, 1
		inj.Add(k)
	}
}

// server is the echo server and what it observed of its channels.
type server struct {
	group *loop.Group
	ln    *loop.Listener

	mu        sync.Mutex
	handlers  []*echoHandler
	byID      map[uint64]*echoHandler
	regFailed []error // registrations that failed (the listener's OnError)
	throttled int     // errors the listener survived
}

// echoHandler writes back every buffer it reads and learns its client's
// connection number from the first 8 bytes.
type echoHandler struct {
	loop.NopHandler
	s *server

	// Loop-goroutine state; s.mu guards what others read.
	hdr   []byte
	ch    *loop.Channel
	id    uint64
	hasID bool
}

func (h *echoHandler) OnActive(c *loop.Channel) {
	h.s.mu.Lock()
	h.ch = c
	h.s.mu.Unlock()
}

func (h *echoHandler) OnRead(c *loop.Channel, p []byte) {
	if !h.hasID {
		k := min(8-len(h.hdr), len(p))
		h.hdr = append(h.hdr, p[:k]...)
		if len(h.hdr) == 8 {
			h.s.mu.Lock()
			h.id, h.hasID = binary.BigEndian.Uint64(h.hdr), true
			h.s.byID[h.id] = h
			h.s.mu.Unlock()
		}
	}
	c.Write(append([]byte(nil), p...), nil)
}

// startServer serves the echo on cfg.loops loops made with opts: the
// injector's over the real kernel, or a simulated kernel's.
func startServer(cfg config, opts *loop.Options, addr net.Addr) (*server, error) {
	s := &server{byID: map[uint64]*echoHandler{}}
	s.group = loop.NewGroup(cfg.loops, opts)
	ln, err := s.group.Serve(addr, func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
		h := &echoHandler{s: s}
		s.mu.Lock()
		s.handlers = append(s.handlers, h)
		s.mu.Unlock()
		return h, nil
	}, &loop.ListenerOptions{OnError: func(err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if isThrottle(err) {
			s.throttled++
		} else {
			s.regFailed = append(s.regFailed, err)
		}
	}})
	if err != nil {
		s.group.Close()
		return nil, fmt.Errorf("listen on %s %v: %w", addr.Network(), addr, err)
	}
	s.ln = ln
	return s, nil
}

func isThrottle(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// policyErrno returns the injected errno that failed a channel by policy, or 0.
func policyErrno(err error) syscall.Errno {
	for _, e := range []syscall.Errno{syscall.ECONNRESET, syscall.EPIPE, syscall.EBADF, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return e
		}
	}
	return 0
}

// connResult is how one client connection ended.
type connResult struct {
	id              uint64
	sent, confirmed int64
	killed          bool   // the connection died under the client
	lost            int64  // bytes of a surviving connection never echoed, or echoed wrong
	wrongAt         int64  // offset of the first wrong byte, or -1
	cause           string // why it was killed or lost bytes
}

// clients is the client side: conns goroutines that keep a connection each,
// reconnecting when it is killed.
type clients struct {
	cfg    config
	addr   net.Addr
	stop   chan struct{} // closed when the time is up
	drainD time.Duration // how long a surviving connection waits for more of its echo
	nextID atomic.Uint64

	mu          sync.Mutex
	results     []connResult
	dialFails   int
	lastDialErr error
}

func (cl *clients) stopped() bool {
	select {
	case <-cl.stop:
		return true
	default:
		return false
	}
}

// keep runs connections one after another until the time is up.
func (cl *clients) keep() {
	for !cl.stopped() {
		nc, err := net.DialTimeout(cl.addr.Network(), cl.addr.String(), 2*time.Second)
		if err != nil {
			cl.mu.Lock()
			cl.dialFails++
			cl.lastDialErr = err
			cl.mu.Unlock()
			select {
			case <-cl.stop:
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		r := cl.session(nc, cl.nextID.Add(1))
		cl.mu.Lock()
		cl.results = append(cl.results, r)
		cl.mu.Unlock()
		if r.lost > 0 || r.wrongAt >= 0 {
			return // a broken connection is reported; do not pile up more
		}
	}
}

// stream is a connection's bytes: its number, then pseudo-random bytes from the
// seed and the number. Writer and reader each have one and stay in step.
type stream struct {
	hdr [8]byte
	off int
	rng *rand.ChaCha8
}

func newStream(seed, id uint64) *stream {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	binary.BigEndian.PutUint64(key[8:], id)
	s := &stream{rng: rand.NewChaCha8(key)}
	binary.BigEndian.PutUint64(s.hdr[:], id)
	return s
}

func (s *stream) next(p []byte) {
	if s.off < len(s.hdr) {
		k := copy(p, s.hdr[s.off:])
		s.off += k
		p = p[k:]
	}
	if len(p) > 0 {
		_, _ = s.rng.Read(p)
	}
}

var errWrong = errors.New("the echo differs from the bytes sent")

// session sends and checks on one connection until it dies or the time is up.
func (cl *clients) session(nc net.Conn, id uint64) connResult {
	r := connResult{id: id, wrongAt: -1}
	var sent, confirmed atomic.Int64
	var stopping atomic.Bool

	wdone := make(chan error, 1)
	go func() {
		out := newStream(cl.cfg.seed, id)
		sizes := rand.New(rand.NewPCG(cl.cfg.seed, id))
		buf := make([]byte, 32<<10)
		for !stopping.Load() {
			p := buf[:1+sizes.IntN(len(buf))]
			out.next(p)
			n, err := nc.Write(p)
			sent.Add(int64(n))
			if err != nil {
				wdone <- err
				return
			}
		}
		wdone <- nil
	}()

	progress := make(chan struct{}, 1)
	rdone := make(chan error, 1)
	rexit := make(chan struct{})
	var wrongAt atomic.Int64
	wrongAt.Store(-1)
	go func() {
		defer close(rexit)
		in := newStream(cl.cfg.seed, id)
		buf := make([]byte, 64<<10)
		want := make([]byte, len(buf))
		for {
			n, err := nc.Read(buf)
			if n > 0 {
				in.next(want[:n])
				for i := 0; i < n; i++ {
					if buf[i] != want[i] {
						wrongAt.Store(confirmed.Load() + int64(i))
						rdone <- errWrong
						return
					}
				}
				confirmed.Add(int64(n))
				select {
				case progress <- struct{}{}:
				default:
				}
			}
			if err != nil {
				rdone <- err
				return
			}
		}
	}()

	finish := func(rerr error, killed bool) connResult {
		stopping.Store(true)
		nc.Close()
		<-wdone
		<-rexit
		r.sent, r.confirmed, r.wrongAt = sent.Load(), confirmed.Load(), wrongAt.Load()
		switch {
		case r.wrongAt >= 0:
			r.lost = r.sent - r.wrongAt
			r.cause = fmt.Sprintf("wrong byte at offset %d", r.wrongAt)
		case killed:
			r.killed = true
			r.cause = describe(rerr)
		case r.confirmed < r.sent:
			r.lost = r.sent - r.confirmed
			r.cause = describe(rerr)
		}
		return r
	}

	var werr error
	select {
	case rerr := <-rdone:
		return finish(rerr, true)
	case werr = <-wdone:
		// Killed under the writer: the reader finds out too, or the time runs
		// out first.
		wdone <- werr
		select {
		case rerr := <-rdone:
			return finish(rerr, true)
		case <-cl.stop:
		}
	case <-cl.stop:
	}

	// Time is up: stop sending, then wait for the rest of the echo.
	stopping.Store(true)
	nc.SetWriteDeadline(time.Now())
	werr = <-wdone
	wdone <- werr
	final := sent.Load()
	nc.SetReadDeadline(time.Now().Add(cl.drainD))
	for confirmed.Load() < final {
		select {
		case <-progress:
			nc.SetReadDeadline(time.Now().Add(cl.drainD))
		case rerr := <-rdone:
			if confirmed.Load() >= final {
				return finish(nil, false)
			}
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				return finish(fmt.Errorf("no echo for %v after the end", cl.drainD), false)
			}
			return finish(rerr, !errors.Is(rerr, errWrong))
		}
	}
	return finish(nil, false)
}

// describe names a connection's end for the report.
func describe(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "ECONNRESET"
	case errors.Is(err, syscall.EPIPE):
		return "EPIPE"
	}
	return err.Error()
}

// chaos runs the whole thing and prints the report; ok is false when something
// was lost or stopped.
func chaos(cfg config, stdout io.Writer) (ok bool, err error) {
	var addr net.Addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if cfg.network == "unix" {
		dir, err := os.MkdirTemp("", "fsmkernel-chaos-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(dir)
		addr = &net.UnixAddr{Net: "unix", Name: filepath.Join(dir, "chaos.sock")}
	}
	inj := looptest.NewInjector(cfg.seed, backgroundRules()...)
	s, err := startServer(cfg, inj.Options(nil), addr)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(stdout, "chaos: echo over %s on %d loops, %d clients, %v, seed %d\n", cfg.network, cfg.loops, cfg.conns, cfg.duration, cfg.seed)

	cl := &clients{cfg: cfg, addr: s.ln.Addr(), stop: make(chan struct{}), drainD: cfg.drain}
	var wg sync.WaitGroup
	for range cfg.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.keep()
		}()
	}
	killsDone := make(chan struct{})
	go func() {
		defer close(killsDone)
		scheduleKills(inj, cfg.duration, cl.stop)
	}()
	time.Sleep(cfg.duration)
	close(cl.stop)
	<-killsDone
	wg.Wait()

	stoppedEarly := s.stoppedEarly()
	var r report
	r.counters = s.counters()
	s.ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	r.shutdownErr = s.group.Shutdown(ctx)
	cancel()
	counts := inj.Counts()
	for _, f := range faultOrder {
		r.faults = append(r.faults, faultCount{f.String(), int(counts[f])})
	}
	r.onClosed = int(inj.CallsOnClosed())
	cl.mu.Lock()
	r.dialFails = cl.dialFails
	if cl.lastDialErr != nil {
		r.notes = append(r.notes, fmt.Sprintf("last failed dial: %v", cl.lastDialErr))
	}
	results := cl.results
	cl.mu.Unlock()
	s.account(results, &r)
	r.notes = append(r.notes, stoppedEarly...)
	r.stoppedEarly = len(stoppedEarly)
	return r.print(stdout), nil
}

// stoppedEarly names the loops and the listener that stopped on their own
// before the end.
func (s *server) stoppedEarly() []string {
	var out []string
	for i, l := range s.group.Loops() {
		select {
		case <-l.Done():
			out = append(out, fmt.Sprintf("loop %d: %v", i, l.Wait()))
		default:
		}
	}
	select {
	case <-s.ln.Closed():
		out = append(out, fmt.Sprintf("listener: %v", s.ln.Err()))
	default:
	}
	return out
}

// loopCounters are the group's counters the report prints, summed over its loops.
type loopCounters struct {
	spurious, stale, contained, panics, throttles, aborted, rejected uint64
}

func (s *server) counters() loopCounters {
	var c loopCounters
	for _, l := range s.group.Loops() {
		k := l.Counters()
		c.spurious += k.SpuriousReadiness.Load()
		c.stale += k.StaleEvents.Load()
		c.contained += k.DescriptorsContained.Load()
		c.panics += k.PanicsContained.Load()
		c.throttles += k.ListenerThrottles.Load()
		c.aborted += k.AcceptAborted.Load()
		c.rejected += k.Rejected.Load()
	}
	return c
}

type faultCount struct {
	name string
	n    int
}

// report is what a run found: the faults, the clients' connections reconciled
// with the server's channels, the loops' counters and the checks.
type report struct {
	faults    []faultCount // in the order printed
	counters  loopCounters
	onClosed  int // calls on descriptors the runtime had closed
	dialFails int

	surv, killed                   int
	survSent, survEchoed           int64
	killSent, killEchoed, inFlight int64
	lost                           int64
	wrong, unexplained             int

	accepted, regFailed, clean, otherFail, throttled int
	policy                                           map[syscall.Errno]int

	stoppedEarly int
	shutdownErr  error
	notes        []string
}

// account reconciles the clients' connections with the server's channels,
// after the group stopped.
func (s *server) account(results []connResult, r *report) {
	s.mu.Lock()
	handlers := s.handlers
	byID := s.byID
	regFailed := s.regFailed
	r.throttled = s.throttled
	s.mu.Unlock()
	r.accepted, r.regFailed = len(handlers), len(regFailed)
	r.policy = map[syscall.Errno]int{}
	var otherErrs []string
	for _, h := range handlers {
		s.mu.Lock()
		ch := h.ch
		s.mu.Unlock()
		if ch == nil {
			continue // its registration failed: in regFailed
		}
		select {
		case <-ch.Closed():
		default:
			r.otherFail++
			otherErrs = append(otherErrs, fmt.Sprintf("channel %d still open after shutdown", ch.ID()))
			continue
		}
		cerr := ch.Err()
		switch {
		case cerr == nil || errors.Is(cerr, net.ErrClosed) || errors.Is(cerr, loop.ErrClosed):
			r.clean++
		case policyErrno(cerr) != 0:
			r.policy[policyErrno(cerr)]++
		default:
			r.otherFail++
			otherErrs = append(otherErrs, fmt.Sprintf("channel %d: %v", ch.ID(), cerr))
		}
	}

	results = slices.Clone(results)
	sort.Slice(results, func(i, j int) bool { return results[i].id < results[j].id })
	for _, c := range results {
		if c.wrongAt >= 0 {
			r.wrong++
			r.lost += c.lost
			r.notes = append(r.notes, fmt.Sprintf("connection %d: %s (%d bytes sent, %d confirmed)", c.id, c.cause, c.sent, c.confirmed))
			continue
		}
		if !c.killed {
			r.surv++
			r.survSent += c.sent
			r.survEchoed += c.confirmed
			if c.lost > 0 {
				r.lost += c.lost
				r.notes = append(r.notes, fmt.Sprintf("connection %d survived but %d bytes never came back: %s", c.id, c.lost, c.cause))
			}
			continue
		}
		r.killed++
		r.killSent += c.sent
		r.killEchoed += c.confirmed
		h := byID[c.id]
		var cerr error
		explained := false
		if h != nil {
			s.mu.Lock()
			ch := h.ch
			s.mu.Unlock()
			if ch != nil {
				cerr = ch.Err()
				explained = policyErrno(cerr) != 0
			}
		} else {
			// The server never read this connection's number: the kill came
			// before, and its channel counts among the policy failures or the
			// failed registrations without a number.
			explained = true
		}
		if explained {
			r.inFlight += c.sent - c.confirmed
			continue
		}
		r.unexplained++
		r.lost += c.sent - c.confirmed
		r.notes = append(r.notes, fmt.Sprintf("connection %d died (%s) but its server channel closed with %v", c.id, c.cause, cerr))
	}
	for _, e := range regFailed {
		r.notes = append(r.notes, fmt.Sprintf("registration failed: %v", e))
	}
	r.notes = append(r.notes, otherErrs...)
}

// print writes the report and says whether the run passed: nothing lost or
// reordered, no unexplained death, nothing stopped early, no call on a closed
// descriptor, a clean shutdown.
func (r *report) print(w io.Writer) (ok bool) {
	fmt.Fprintf(w, "faults injected:\n")
	kinds := 0
	for _, f := range r.faults {
		if f.n > 0 {
			kinds++
		}
		fmt.Fprintf(w, "  %-28s %d\n", f.name+":", f.n)
	}
	fmt.Fprintf(w, "  %-28s %d\n", "kinds:", kinds)
	fmt.Fprintf(w, "surviving connections:\n")
	fmt.Fprintf(w, "  %-28s %d\n", "connections:", r.surv)
	fmt.Fprintf(w, "  %-28s %d\n", "bytes sent:", r.survSent)
	fmt.Fprintf(w, "  %-28s %d\n", "bytes echoed back:", r.survEchoed)
	fmt.Fprintf(w, "killed connections:\n")
	fmt.Fprintf(w, "  %-28s %d\n", "connections:", r.killed)
	fmt.Fprintf(w, "  %-28s %d\n", "bytes sent:", r.killSent)
	fmt.Fprintf(w, "  %-28s %d\n", "bytes echoed back:", r.killEchoed)
	fmt.Fprintf(w, "  %-28s %d\n", "in flight when killed:", r.inFlight)
	fmt.Fprintf(w, "server channels:\n")
	fmt.Fprintf(w, "  %-28s %d\n", "accepted:", r.accepted)
	fmt.Fprintf(w, "  %-28s %d (ECONNRESET %d, EPIPE %d, EBADF %d, ENOMEM %d)\n", "failed by policy:",
		r.policy[syscall.ECONNRESET]+r.policy[syscall.EPIPE]+r.policy[syscall.EBADF]+r.policy[syscall.ENOMEM],
		r.policy[syscall.ECONNRESET], r.policy[syscall.EPIPE], r.policy[syscall.EBADF], r.policy[syscall.ENOMEM])
	fmt.Fprintf(w, "  %-28s %d\n", "registration failed:", r.regFailed)
	fmt.Fprintf(w, "  %-28s %d\n", "closed cleanly:", r.clean)
	fmt.Fprintf(w, "  %-28s %d\n", "failed otherwise:", r.otherFail)
	fmt.Fprintf(w, "  %-28s %d\n", "listener throttled (errors):", r.throttled)
	c := r.counters
	fmt.Fprintf(w, "loop counters:\n")
	fmt.Fprintf(w, "  %-28s %d\n", "SpuriousReadiness:", c.spurious)
	fmt.Fprintf(w, "  %-28s %d\n", "StaleEvents:", c.stale)
	fmt.Fprintf(w, "  %-28s %d\n", "DescriptorsContained:", c.contained)
	fmt.Fprintf(w, "  %-28s %d\n", "PanicsContained:", c.panics)
	fmt.Fprintf(w, "  %-28s %d\n", "ListenerThrottles:", c.throttles)
	fmt.Fprintf(w, "  %-28s %d\n", "AcceptAborted:", c.aborted)
	fmt.Fprintf(w, "  %-28s %d\n", "Rejected:", c.rejected)
	fmt.Fprintf(w, "checks:\n")
	fmt.Fprintf(w, "  %-28s %d\n", "lost bytes:", r.lost)
	fmt.Fprintf(w, "  %-28s %d\n", "reordered connections:", r.wrong)
	fmt.Fprintf(w, "  %-28s %d\n", "unexplained deaths:", r.unexplained)
	fmt.Fprintf(w, "  %-28s %d\n", "stopped early:", r.stoppedEarly)
	fmt.Fprintf(w, "  %-28s %d\n", "calls on closed descriptors:", r.onClosed)
	fmt.Fprintf(w, "  %-28s %d\n", "failed dials:", r.dialFails)
	if r.shutdownErr == nil {
		fmt.Fprintf(w, "shutdown: ok\n")
	} else {
		fmt.Fprintf(w, "shutdown: %v\n", r.shutdownErr)
	}
	for _, n := range r.notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	ok = r.lost == 0 && r.wrong == 0 && r.unexplained == 0 && r.stoppedEarly == 0 && r.otherFail == 0 && r.onClosed == 0 && r.shutdownErr == nil
	if ok {
		fmt.Fprintf(w, "result: ok, no byte lost or reordered on the connections the faults did not kill\n")
	} else {
		fmt.Fprintf(w, "result: FAILED\n")
	}
	return ok
}
