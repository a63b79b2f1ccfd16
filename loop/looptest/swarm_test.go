//go:build linux || darwin || freebsd

package looptest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/vsock"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// The swarm: servers on the simulated kernel, driven through schedules of
// peer actions, API calls, turns and faults, every run checked by an oracle of
// named contracts. A schedule is data (so that rapid can shrink it and a
// failure can be replayed from one line); the Sim's own choices come from the
// schedule's seed.

// opKind is one thing a schedule does between turns.
type opKind uint8

const (
	opConnect      opKind = iota // a new peer connects
	opPeerWrite                  // peer A writes B bytes
	opPeerRead                   // peer A toggles reading
	opHalfClose                  // peer A shuts its write side
	opPeerReset                  // peer A resets
	opPeerClose                  // peer A closes
	opServerWrite                // the driver writes B bytes on channel A (off the loop)
	opChannelClose               // the driver closes channel A
	opTurns                      // B turns
	opAdvance                    // B milliseconds of virtual time
	opCloseBehind                // the A-th registered number is closed behind the runtime (B odd: reused)
	opShutdownNow                // the end begins now, mid-traffic
	opDial                       // the group dials (see dial: where, through which API, with which deadline)
	opKinds
)

var opNames = [...]string{"connect", "peerWrite", "peerRead", "halfClose", "peerReset", "peerClose",
	"serverWrite", "channelClose", "turns", "advance", "closeBehind", "shutdownNow", "dial"}

type op struct {
	K    opKind
	A, B int
}

func (o op) String() string { return fmt.Sprintf("%s(%d,%d)", opNames[o.K], o.A, o.B) }

// kindWeights: turns and traffic are most of a schedule; the rest is rarer.
var kindWeights = [opKinds]int{opConnect: 8, opPeerWrite: 20, opPeerRead: 4, opHalfClose: 3, opPeerReset: 2,
	opPeerClose: 2, opServerWrite: 10, opChannelClose: 2, opTurns: 30, opAdvance: 8, opCloseBehind: 2, opShutdownNow: 1, opDial: 3}

var kindWeightTotal = func() (n int) {
	for _, w := range kindWeights {
		n += w
	}
	return n
}()

// weightedKind maps x in [0, kindWeightTotal) to an op kind by the weights;
// small x are connects, which a shrinking schedule keeps.
func weightedKind(x int) opKind {
	k := opKind(0)
	for ; x >= kindWeights[k]; k++ {
		x -= kindWeights[k]
	}
	return k
}

// endKind is how a schedule stops its group.
type endKind uint8

const (
	endGraceful endKind = iota // Shutdown with every peer reading
	endForced                  // Shutdown whose context is cancelled while peers do not read
	endClose                   // Close
	endKinds
)

// schedule is one run of the swarm.
type schedule struct {
	Seed        uint64
	Loops       int
	Profile     looptest.Profile
	Panic       uint16 // handler panics per 10,000 callbacks
	HalfClosure bool
	End         endKind
	Family      int // 0 TCP, 1 Unix, 2 vsock (with the readiness vsock is known for)
	Ops         []op
	Opts        swarmOpts `json:",omitzero"`
}

// swarmOpts are the options a schedule draws for its loops, listener and
// channels. Its zero value is the swarm's fixed options of before they were
// drawn (and so what a token from then replays): 8 KiB/2 KiB watermarks, a
// 2 KiB read buffer, the default budgets, no idle or write timeout, dials
// bounded by 1 s through Loop.Dial to a remote server or where nothing
// listens, the contain policies and 64 KiB socket buffers.
type swarmOpts struct {
	High, Low                int // the channels' watermarks (Low is kept below High)
	ReadBuf                  int // Options.ReadBufferSize; the driver's writes are at most this
	ReadBudget               int // Options.ReadBudget, AcceptBudget, TaskBudget: 0 the defaults
	AcceptBudget, TaskBudget int
	IdleMs, WriteMs          int  // ChannelOptions.IdleTimeout and WriteTimeout, in ms of virtual time (0: off)
	ConnectMs                int  // ChannelOptions.ConnectTimeout of the dials, in ms (0: 1 s)
	SockBuf                  int  // the simulated sockets' buffer, each way (0: 64 KiB)
	ForceMs                  int  // how long a forced end's Shutdown drains before its context is cancelled (0: 10 ms)
	Lazy                     bool // a client peer begins not reading (peerRead starts it): output stalls
	Repanic                  bool // ChannelOptions.RepanicHandlerPanics: a handler panic fails the loop
	// Crash is ChannelOptions.CrashOnInvalidDescriptor, in force only in a
	// schedule where no number is invalidated (no EBADF fault, no
	// closeBehind): it would end the process.
	Crash bool
	// Dials: the dials also go to a remote that never answers and through
	// Group.Dial with a context, bounded by its deadline (see dial).
	Dials bool
	// Pause: the handler pauses its channel's reading (PauseReading) in
	// OnActive, and in an OnRead until that read's echo is done, at this
	// rate per 10,000 of those callbacks (0: never); at most
	// maxHandlerPauses times per channel.
	Pause int
	// Pauses: the driver's PauseReading and ResumeReading calls, from
	// outside the loop, each after one op of the schedule.
	Pauses []pauseOp `json:",omitempty"`
}

// resolved is o with its zero fields given the values they stand for.
func (o swarmOpts) resolved() swarmOpts {
	if o.High <= 0 {
		o.High, o.Low = 8<<10, 2<<10
	}
	o.Low = min(max(o.Low, 0), o.High-1)
	if o.ReadBuf <= 0 {
		o.ReadBuf = 2 << 10
	}
	if o.ConnectMs <= 0 {
		o.ConnectMs = 1000
	}
	if o.ForceMs <= 0 {
		o.ForceMs = 10
	}
	return o
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// drawOpts draws a schedule's options with intn (a draw in [0, n), which
// rapid shrinks toward 0: toward the options of before, off and small):
// every one varies; the timeouts are off in most runs and small on virtual
// time in the others.
func drawOpts(intn func(name string, n int) int) swarmOpts {
	opt := func(name string, p, lo, hi int) int { // 0 with probability 1-1/p, else in [lo, hi]
		if intn(name+"On", p) != p-1 {
			return 0
		}
		return lo + intn(name, hi-lo+1)
	}
	o := swarmOpts{
		High:    512 + intn("high", 32<<10),
		ReadBuf: 256 << intn("readBuf", 7), // 256 B to 16 KiB
		Dials:   intn("dials", 8) != 0,     // rapid shrinks it toward the dials of before
	}
	o.Low = intn("low", o.High)
	o.ReadBudget = opt("readBudget", 2, 1, 4)
	o.AcceptBudget = opt("acceptBudget", 2, 1, 4)
	o.TaskBudget = opt("taskBudget", 2, 1, 4)
	o.IdleMs = opt("idle", 4, 20, 500)
	o.WriteMs = opt("write", 3, 10, 300)
	o.ConnectMs = 20 + intn("connect", 981)
	o.SockBuf = opt("sockBuf", 2, 1, 32) << 10 // 1 to 32 KiB
	o.ForceMs = opt("force", 2, 10, 600)
	o.Lazy = intn("lazy", 4) == 3
	o.Repanic = intn("repanic", 8) == 7
	o.Crash = intn("crash", 8) == 7
	// Drawn last, so that a seed's other options are what they were before
	// the pauses were drawn.
	o.Pause = opt("pause", 2, 1, 3000)
	if intn("pausesOn", 2) == 1 {
		for range 1 + intn("pauses", maxDriverPauses) {
			o.Pauses = append(o.Pauses, pauseOp{At: intn("pauseAt", 150), A: intn("pauseChan", 8), Resume: intn("pauseResume", 3) == 0})
		}
	}
	return o
}

// encode is the schedule as one token for -sim.replay.
func (sc schedule) encode() string {
	b, _ := json.Marshal(sc)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeSchedule(s string) (schedule, error) {
	var sc schedule
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return sc, fmt.Errorf("-sim.replay: %w", err)
	}
	if err := json.Unmarshal(b, &sc); err != nil {
		return sc, fmt.Errorf("-sim.replay: %w", err)
	}
	return sc, nil
}

// randomSchedule draws a schedule from seed alone (the long search): a swarm
// profile (each fault on or off for the whole run, at a drawn rate), then ops.
func randomSchedule(seed uint64) schedule {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	rate := func(max int) uint16 {
		if r.IntN(2) == 0 {
			return 0
		}
		return uint16(1 + r.IntN(max))
	}
	sc := schedule{
		Seed: seed, Loops: 1 + r.IntN(3), Panic: rate(300), HalfClosure: r.IntN(2) == 0,
		End: endKind(r.IntN(int(endKinds))), Family: r.IntN(3),
		Profile: looptest.Profile{
			EINTR: rate(2000), EAGAIN: rate(2000), Short: rate(3000), Reset: rate(300),
			EBADF: rate(200), Reuse: rate(10000), AcceptLimit: rate(3000), ControlFail: rate(200),
			WaitFail: rate(50), Spurious: rate(2000), EOFHint: rate(1000), StaleInterest: rate(1000),
		},
	}
	n := 20 + r.IntN(130)
	for i := 0; i < n; i++ {
		k := weightedKind(r.IntN(kindWeightTotal))
		if i < 2 {
			k = opConnect
		}
		sc.Ops = append(sc.Ops, op{K: k, A: r.IntN(8), B: 1 + r.IntN(6000)})
	}
	// Drawn last, so that a seed's profile and ops are what they were
	// before the options were drawn.
	sc.Opts = drawOpts(func(_ string, n int) int { return r.IntN(n) })
	return sc
}

// The remote server the swarm dials, an address where nothing listens, and
// one that never answers.
var (
	swarmRemote  = &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 443}
	swarmNowhere = &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 444}
	swarmSilent  = &net.TCPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 445}
)

// timeoutSlack is how late past its timeout a channel or a dial may still be
// open: none on virtual time, where the loop's timer is due exactly then and
// the Sim stops the clock there; a millisecond for rounding's sake.
const timeoutSlack = time.Millisecond

// written is one write the server made, and what became of it.
type written struct {
	n      int
	done   int // calls of done
	err    error
	before bool // accepted before the Shutdown began
}

// chanRec is the oracle's record of one channel.
type chanRec struct {
	c        *loop.Channel
	peer     *looptest.Peer
	out      []byte // everything written to the channel, in order
	writes   []*written
	queued   int
	offLoop  *written // the driver's last write
	writable bool
	reads    int // OnReads since the last OnReadComplete
	panicked bool
	closed   bool // the driver closed it
	dialed   bool
	laddr    string // a dialed channel's local address
	mark     int    // the calm check's start in its peer's Received
	inactive bool
	activeAt time.Time // when OnActive came: the timeouts' clocks start
	// pendingSince: when the output (writes whose done is not yet called)
	// last went from none to some.
	pendingSince time.Time
	timedOut     error // the timeout OnError reported, if any
	pause        pauseRec
}

// dialRec is one dial of the swarm, and what became of it.
type dialRec struct {
	rec     *chanRec
	silent  bool          // to the address that never answers
	viaCtx  bool          // Group.Dial with a context, not Loop.Dial
	start   time.Time     // when it was made
	bound   time.Duration // its ConnectTimeout, or its context's deadline if sooner
	results int           // answers: the callback's calls, or Group.Dial's return
	err     error
	at      time.Time // when the first answer came
	cancel  context.CancelFunc
	// Group.Dial's return, kept by its goroutine under mu until the driver
	// hears it (collectDials): that goroutine runs beside the loop's turn
	// that answered it.
	mu       sync.Mutex
	returned bool
	retErr   error
	retAt    time.Time
}

// world is one run's server, peers and oracle.
type world struct {
	s        *looptest.Sim
	sc       schedule
	g        *loop.Group
	ln       *loop.Listener
	tables   *looptest.Tables
	rng      *rand.Rand
	peers    []*looptest.Peer
	reading  map[*looptest.Peer]bool
	shut     map[*looptest.Peer]bool // the peer half-closed, closed or reset
	gone     map[*looptest.Peer]bool // the peer closed or reset: it reads nothing more
	chans    []*chanRec
	byAddr   map[string]*chanRec
	ending   bool
	quiet    bool // the faults stopped: no more planted panics
	remote   *looptest.Remote
	pending  []*looptest.Peer // the remote's peers not yet matched to their channel
	cancel   context.CancelFunc
	stopErr  error // what Shutdown or Close returned
	stopped  bool  // it returned
	payload  byte
	acceptPn int       // accept-callback panics
	o        swarmOpts // sc.Opts resolved
	dials    []*dialRec
	reached  reached
	byID     map[uint64]*chanRec    // the channels by id, for their Trace steps
	wrote    map[*looptest.Peer]int // the bytes each peer wrote
	prng     *rand.Rand             // the handler's pauses
}

// reached counts the timeouts a run reached, so that a test can tell the
// contracts on them were checked on real cases.
type reached struct{ idle, write, connect, pauses, disarmed, rearmed, calmed int }

// reachedOver sums what the schedules of seeds 1 to n reached.
func reachedOver(t *testing.T, n uint64) reached {
	var sum reached
	for seed := uint64(1); seed <= n; seed++ {
		_, st := runSchedule(t, randomSchedule(seed))
		r := st.reached
		sum.idle += r.idle
		sum.write += r.write
		sum.connect += r.connect
		sum.pauses += r.pauses
		sum.disarmed += r.disarmed
		sum.rearmed += r.rearmed
		sum.calmed += r.calmed
	}
	return sum
}

// hdl is the handler of every channel of the swarm: an echo that records
// what it writes and checks its callbacks' order.
type hdl struct {
	w   *world
	rec *chanRec
}

func (h *hdl) maybePanic(where string) {
	if h.w.panics() {
		h.rec.panicked = true
		panic("swarm: planted panic in " + where)
	}
}

func (h *hdl) OnActive(c *loop.Channel) {
	h.rec.c = c
	h.rec.writable = true
	h.rec.activeAt = time.Now()
	h.w.byID[c.ID()] = h.rec
	if h.rec.dialed {
		if a := c.LocalAddr(); a != nil {
			h.rec.laddr = a.String() // its remote peer is matched by it
		}
	}
	h.maybePanic("OnActive")
	if h.w.handlerPauses(h.rec) {
		h.w.pauseReading(h.rec) // until the driver resumes it
	}
}

func (h *hdl) OnRead(c *loop.Channel, p []byte) {
	h.rec.reads++
	h.w.checkPausedRead(h.rec, len(p))
	h.maybePanic("OnRead")
	var then func()
	if h.w.handlerPauses(h.rec) {
		// Paused until this read's echo is done, as a proxy waits for the
		// other side to take what it read.
		h.w.pauseReading(h.rec)
		then = func() { h.w.resumeReading(h.rec) }
	}
	h.w.write(h.rec, append([]byte(nil), p...), true, then)
}

func (h *hdl) OnReadComplete(c *loop.Channel) {
	if h.rec.reads == 0 {
		h.w.s.Violate("R2", "channel %d: OnReadComplete after no OnRead", c.ID())
	}
	h.rec.reads = 0
	h.maybePanic("OnReadComplete")
}

func (h *hdl) OnWritabilityChanged(c *loop.Channel, writable bool) {
	h.rec.writable = writable
	h.maybePanic("OnWritabilityChanged")
}

func (h *hdl) OnInputClosed(c *loop.Channel) { h.maybePanic("OnInputClosed") }
func (h *hdl) OnError(c *loop.Channel, err error) {
	// A timeout's OnError comes as it closes the channel, before its
	// pending writes fail: the time and the output are the close's.
	switch {
	case errors.Is(err, loop.ErrWriteTimeout):
		h.w.checkWriteTimeout(h.rec, err)
	case errors.Is(err, loop.ErrIdleTimeout):
		h.w.checkIdleTimeout(h.rec, err)
	}
	h.maybePanic("OnError")
}

func (h *hdl) OnInactive(c *loop.Channel) {
	h.rec.inactive = true
}

// unwritten returns the bytes written to rec's channel that the kernel has
// not taken yet, when that can be told: no write failed and nothing was lost
// on the way.
func (w *world) unwritten(rec *chanRec) (int, bool) {
	if rec.peer == nil || !w.healthy(rec) {
		return 0, false
	}
	for _, wr := range rec.writes {
		if wr.done > 0 && wr.err != nil {
			return 0, false
		}
	}
	return len(rec.out) - len(rec.peer.Received()) - rec.peer.Pending(), true
}

// panics draws whether a callback panics now: never once the faults stopped.
func (w *world) panics() bool {
	return !w.quiet && w.sc.Panic > 0 && w.rng.IntN(10000) < int(w.sc.Panic)
}

// write writes p on rec's channel, Send on the loop or Write off it, with a
// done that checks it is called once and then calls then, if set.
func (w *world) write(rec *chanRec, p []byte, onLoop bool, then func()) {
	wr := &written{n: len(p), before: !w.ending}
	rec.writes = append(rec.writes, wr)
	rec.out = append(rec.out, p...)
	if rec.queued == 0 && len(p) > 0 {
		rec.pendingSince = time.Now()
	}
	rec.queued += len(p)
	// The writers respect writability: the handler echoes only what it read
	// (the table stops reading above the high watermark), and the driver
	// keeps one write outstanding while the channel is writable. So the
	// output may pass the high watermark by one write of each, at most a
	// read buffer.
	if unwritten, ok := w.unwritten(rec); ok && unwritten > w.o.High+2*w.o.ReadBuf {
		w.s.Violate("watermark", "channel %d: %d bytes queued and not written, above the high watermark %d plus one write of each writer (%d)", rec.c.ID(), unwritten, w.o.High, w.o.ReadBuf)
	}
	if !onLoop {
		rec.offLoop = wr
	}
	done := func(err error) {
		wr.done++
		if wr.done > 1 {
			w.s.Violate("write-once", "channel %d: a write's done called %d times (%v)", rec.c.ID(), wr.done, err)
			return
		}
		wr.err = err
		rec.queued -= wr.n
		if then != nil {
			then()
		}
		if w.panics() {
			rec.panicked = true
			panic("swarm: planted panic in a write's done")
		}
	}
	if onLoop && !w.echoesWithWrite(rec) {
		rec.c.Send(p, done)
	} else {
		rec.c.Write(p, done)
	}
}

// accepted is the listener's callback.
func (w *world) accepted(addr net.Addr) (loop.Handler, *loop.ChannelOptions) {
	if w.panics() {
		w.acceptPn++
		panic("swarm: planted panic in Accepted")
	}
	rec := &chanRec{}
	w.chans = append(w.chans, rec)
	w.byAddr[addr.String()] = rec
	for _, p := range w.peers {
		if p.LocalAddr().String() == addr.String() {
			rec.peer = p
		}
	}
	return &hdl{w: w, rec: rec}, w.channelOptions()
}

// channelOptions are the options of every channel of the run.
func (w *world) channelOptions() *loop.ChannelOptions {
	return &loop.ChannelOptions{
		HalfClosure: w.sc.HalfClosure, HighWatermark: w.o.High, LowWatermark: w.o.Low,
		ConnectTimeout: ms(w.o.ConnectMs), IdleTimeout: ms(w.o.IdleMs), WriteTimeout: ms(w.o.WriteMs),
		RepanicHandlerPanics: w.o.Repanic, CrashOnInvalidDescriptor: w.crash(),
	}
}

// crash reports whether the crash policy is in force: drawn, and nothing in
// the schedule invalidates a number.
func (w *world) crash() bool {
	if !w.sc.Opts.Crash || w.sc.Profile.EBADF > 0 {
		return false
	}
	for _, o := range w.sc.Ops {
		if o.K == opCloseBehind {
			return false
		}
	}
	return true
}

// runSchedule runs sc on a fresh simulation and returns the broken contracts.
func runSchedule(t *testing.T, sc schedule) (violations []looptest.Violation, stats simStats) {
	violations = looptest.Check(t, sc.Seed, func(s *looptest.Sim) {
		w := &world{s: s, sc: sc, tables: looptest.NewTables(), reading: map[*looptest.Peer]bool{}, shut: map[*looptest.Peer]bool{}, gone: map[*looptest.Peer]bool{},
			byAddr: map[string]*chanRec{}, rng: newRng(sc.Seed), o: sc.Opts.resolved(),
			byID: map[uint64]*chanRec{}, wrote: map[*looptest.Peer]int{}, prng: rand.New(rand.NewPCG(sc.Seed, 0x9a05e))}
		o := sm.DefaultChannelOptions()
		o.HalfClosure = sc.HalfClosure
		if w.o.Repanic {
			o.PanicPolicy = sm.ChannelPanicPolicyRepanic
		}
		if w.crash() {
			o.EbadfPolicy = sm.ChannelEbadfPolicyCrash
		}
		w.tables.ChannelDefaults(o)
		w.run()
		stats = simStats{turns: s.Turns(), syscalls: s.SyscallCount(), injected: s.Injected(), unknowing: s.UnknowingCloses(), hash: s.TraceHash(), reached: w.reached}
	})
	return violations, stats
}

type simStats struct {
	turns     int
	syscalls  uint64
	injected  map[string]int
	unknowing int
	hash      uint64
	reached   reached
}

func (w *world) run() {
	s, sc := w.s, w.sc
	opts := s.Options(&loop.Options{
		ReadBufferSize: w.o.ReadBuf, DrainTimeout: 2 * time.Second,
		ReadBudget: w.o.ReadBudget, AcceptBudget: w.o.AcceptBudget, TaskBudget: w.o.TaskBudget,
		Trace: func(st loop.Step) {
			if err := w.tables.Check(st); err != nil {
				s.Violate("table", "%v", err)
			}
			w.checkRejected(st)
			w.tracePause(st)
		},
	})
	loops := sc.Loops
	if loops < 1 || loops > 4 {
		loops = 1
	}
	w.g = loop.NewGroup(loops, opts)
	var addr net.Addr = &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80}
	switch sc.Family {
	case 1:
		addr = &net.UnixAddr{Net: "unix", Name: "/run/swarm.sock"}
	case 2:
		// AF_VSOCK under a hypervisor reports readiness its reads do not
		// find (EAGAIN) and EOF hints with nothing to read: at least at
		// these rates, whatever the profile says.
		addr = &vsock.Addr{ContextID: 2, Port: 1024}
		sc.Profile.Spurious = max(sc.Profile.Spurious, 2000)
		sc.Profile.EOFHint = max(sc.Profile.EOFHint, 1000)
	}
	ln, err := w.g.Serve(addr, w.accepted, &loop.ListenerOptions{
		OnError: func(error) {},
	})
	if err != nil {
		s.Violate("setup", "Serve: %v", err)
		w.beginStop()
		w.finishStop()
		return
	}
	w.ln = ln
	w.remote = s.Listen(swarmRemote)
	s.Blackhole(swarmSilent)
	s.SetSocketBuffer(sc.Opts.SockBuf) // 0 keeps the default
	s.SetProfile(sc.Profile)
	early := false
	for i, o := range sc.Ops {
		if o.K == opShutdownNow && !early {
			// The end begins now; the traffic, the faults and the rest of
			// the schedule go on while the group stops.
			early = true
			w.beginStop()
			w.driverPauses(i)
			continue
		}
		w.do(o)
		w.driverPauses(i)
		w.readPeers()
		w.checkCycles()
		w.checkTimeouts()
	}
	s.Faults(false)
	w.quiet = true
	w.endedChannels()
	w.resumeAll()
	if !early {
		w.calm()
		w.beginStop()
	}
	w.finishStop()
	w.final()
}

func (w *world) peer(i int) *looptest.Peer {
	if len(w.peers) == 0 {
		return nil
	}
	return w.peers[i%len(w.peers)]
}

func (w *world) channel(i int) *chanRec {
	var live []*chanRec
	for _, r := range w.chans {
		if r.c != nil && !r.inactive {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[i%len(live)]
}

func (w *world) do(o op) {
	s := w.s
	switch o.K {
	case opConnect:
		if len(w.peers) < 8 {
			if p, err := s.Dial(w.ln.Addr()); err == nil {
				w.peers = append(w.peers, p)
				w.reading[p] = !w.o.Lazy
			}
		}
	case opPeerWrite:
		if p := w.peer(o.A); p != nil {
			w.payload++
			w.wrote[p] += p.Write(bytes.Repeat([]byte{w.payload}, o.B))
		}
	case opPeerRead:
		if p := w.peer(o.A); p != nil {
			w.reading[p] = !w.reading[p]
		}
	case opHalfClose:
		if p := w.peer(o.A); p != nil {
			p.CloseWrite()
			w.shut[p] = true
		}
	case opPeerReset:
		if p := w.peer(o.A); p != nil {
			p.Reset()
			w.shut[p], w.gone[p] = true, true
		}
	case opPeerClose:
		if p := w.peer(o.A); p != nil {
			p.Close()
			w.shut[p], w.gone[p] = true, true
		}
	case opServerWrite:
		if r := w.channel(o.A); r != nil && r.writable && !r.panicked && (r.offLoop == nil || r.offLoop.done > 0) {
			w.payload++
			w.write(r, bytes.Repeat([]byte{w.payload}, min(o.B, w.o.ReadBuf)), false, nil)
		}
	case opChannelClose:
		if r := w.channel(o.A); r != nil {
			r.c.Close()
			r.closed = true
		}
	case opTurns:
		for i := 0; i < o.B%8+1 && s.Step(); i++ {
			w.checkCycles()
		}
	case opAdvance:
		s.Advance(time.Duration(o.B%200) * time.Millisecond)
	case opDial:
		if !w.ending {
			w.dial(o)
		}
	case opCloseBehind:
		if fds := s.Registered(true); len(fds) > 0 {
			s.CloseBehind(fds[o.A%len(fds)], o.B%2 == 1)
		}
	}
}

// dial makes the dial o asks for. Before Opts.Dials, to a remote server
// through Loop.Dial (B%4 == 0: where nothing listens). With it, B%4 == 1
// dials the remote that never answers, and A%2 == 1 dials through
// Group.Dial with a context: (A/2)%3 == 0 one without a deadline, 1 a
// deadline at half the ConnectTimeout, 2 at twice it.
func (w *world) dial(o op) {
	addr := net.Addr(swarmRemote)
	if o.B%4 == 0 {
		addr = swarmNowhere
	}
	rec := &chanRec{dialed: true}
	d := &dialRec{rec: rec, start: time.Now(), bound: ms(w.o.ConnectMs)}
	if !w.sc.Opts.Dials {
		c, err := w.g.Next().Dial(addr, &hdl{w: w, rec: rec}, w.channelOptions(), func(error) {})
		if err == nil {
			rec.c = c
			w.byID[c.ID()] = rec
			w.chans = append(w.chans, rec)
		}
		return
	}
	if o.B%4 == 1 {
		addr, d.silent = swarmSilent, true
	}
	w.dials = append(w.dials, d)
	if o.A%2 == 0 {
		c, err := w.g.Next().Dial(addr, &hdl{w: w, rec: rec}, w.channelOptions(), func(err error) { w.dialed(d, err) })
		if err != nil {
			w.dialed(d, err)
			return
		}
		rec.c = c
		w.byID[c.ID()] = rec
		w.chans = append(w.chans, rec)
		return
	}
	d.viaCtx = true
	ctx, cancel := context.WithCancel(context.Background())
	switch (o.A / 2) % 3 {
	case 1:
		d.bound /= 2
		ctx, cancel = context.WithTimeout(context.Background(), d.bound)
	case 2:
		ctx, cancel = context.WithTimeout(context.Background(), 2*d.bound)
	}
	// The channel is the record's from OnActive; until then the driver
	// cannot close it.
	w.chans = append(w.chans, rec)
	d.cancel = cancel
	w.s.Go(func() {
		defer cancel()
		_, err := w.g.Dial(ctx, addr, &hdl{w: w, rec: rec}, w.channelOptions())
		d.mu.Lock()
		d.returned, d.retErr, d.retAt = true, err, time.Now()
		d.mu.Unlock()
	})
}

// collectDials hears the Group.Dials that returned since it last looked.
func (w *world) collectDials() {
	for _, d := range w.dials {
		if !d.viaCtx {
			continue
		}
		d.mu.Lock()
		ret, err, at := d.returned, d.retErr, d.retAt
		d.returned = false
		d.mu.Unlock()
		if ret {
			w.dialedAt(d, err, at)
		}
	}
}

// dialed is a dial's answer: once, and for the remote that never answers a
// timeout no earlier than the dial's bound.
func (w *world) dialed(d *dialRec, err error) { w.dialedAt(d, err, time.Now()) }

func (w *world) dialedAt(d *dialRec, err error, at time.Time) {
	d.results++
	if d.results > 1 {
		w.s.Violate("dial-once", "a dial answered %d times (%v)", d.results, err)
		return
	}
	d.err, d.at = err, at
	if d.silent && timedOut(err, d.viaCtx) {
		w.reached.connect++
	}
	switch took := d.at.Sub(d.start); {
	case d.silent && err == nil:
		w.s.Violate("connect-timeout", "a dial to %v, which never answers, succeeded", swarmSilent)
	case timedOut(err, d.viaCtx) && took < d.bound:
		w.s.Violate("connect-timeout", "a dial timed out %v after it began, before its bound %v: %v", took, d.bound, err)
	}
}

// timedOut reports whether a dial's error says it ran out of time: Group.Dial
// says os.ErrDeadlineExceeded; Loop.Dial's callback gets the channel's cause,
// whose error is not exported.
func timedOut(err error, viaCtx bool) bool {
	if err == nil {
		return false
	}
	if viaCtx {
		return errors.Is(err, os.ErrDeadlineExceeded)
	}
	return strings.Contains(err.Error(), "connect timed out")
}

// checkTimeouts, between turns: no channel stays open past its idle
// timeout, or with output stalled past its write timeout, and no dial to the
// remote that never answers is pending past its bound, while its loop runs.
func (w *world) checkTimeouts() {
	w.collectDials()
	now := time.Now()
	for _, d := range w.dials {
		if d.silent && d.results == 0 && !w.ending && !w.loopFailed() && now.Sub(d.start) > d.bound+timeoutSlack {
			w.s.Violate("connect-timeout", "a dial to %v, which never answers, still pending %v after it began, past its bound %v", swarmSilent, now.Sub(d.start), d.bound)
			d.results = -1 // reported once
		}
	}
	if w.o.IdleMs == 0 && w.o.WriteMs == 0 {
		return
	}
	for _, r := range w.chans {
		if r.c == nil || r.activeAt.IsZero() || r.inactive || !w.healthy(r) || r.timedOut != nil || isDone(r.c.Closed()) || isDone(r.c.Loop().Done()) {
			continue
		}
		read, wrote := r.peer.Transfers()
		if d := ms(w.o.IdleMs); d > 0 {
			if last := latest(r.activeAt, read, wrote); now.Sub(last) > d+timeoutSlack {
				w.s.Violate("idle-timeout", "channel %d still open %v after its last byte read or written, past its IdleTimeout %v", r.c.ID(), now.Sub(last), d)
				r.timedOut = errors.New("reported")
			}
		}
		if d := ms(w.o.WriteMs); d > 0 && r.queued > 0 {
			if last := latest(r.activeAt, r.pendingSince, wrote); now.Sub(last) > d+timeoutSlack {
				w.s.Violate("write-timeout", "channel %d still open with %d bytes pending %v after its output last moved, past its WriteTimeout %v", r.c.ID(), r.queued, now.Sub(last), d)
				r.timedOut = errors.New("reported")
			}
		}
	}
}

// checkIdleTimeout: a channel closed by its idle timeout read and wrote
// nothing for that long.
func (w *world) checkIdleTimeout(r *chanRec, err error) {
	r.timedOut = err
	w.reached.idle++
	d := ms(w.o.IdleMs)
	if d == 0 {
		w.s.Violate("idle-timeout", "channel %d closed with %v and no IdleTimeout", r.c.ID(), err)
		return
	}
	last := r.activeAt
	if r.peer != nil {
		read, wrote := r.peer.Transfers()
		last = latest(last, read, wrote)
	}
	if idle := time.Since(last); r.activeAt.IsZero() || idle < d {
		w.s.Violate("idle-timeout", "channel %d closed with %v %v after its last byte read or written (active since %v), before its IdleTimeout %v", r.c.ID(), err, idle, r.activeAt, d)
	}
}

// checkWriteTimeout: a channel closed by its write timeout had output
// pending, none of which moved for that long.
func (w *world) checkWriteTimeout(r *chanRec, err error) {
	r.timedOut = err
	w.reached.write++
	d := ms(w.o.WriteMs)
	if d == 0 {
		w.s.Violate("write-timeout", "channel %d closed with %v and no WriteTimeout", r.c.ID(), err)
		return
	}
	if r.queued == 0 {
		w.s.Violate("write-timeout", "channel %d closed with %v and no output pending", r.c.ID(), err)
		return
	}
	last := latest(r.activeAt, r.pendingSince)
	if r.peer != nil {
		_, wrote := r.peer.Transfers()
		last = latest(last, wrote)
	}
	if stalled := time.Since(last); r.activeAt.IsZero() || stalled < d {
		w.s.Violate("write-timeout", "channel %d closed with %v, its output stalled %v, before its WriteTimeout %v", r.c.ID(), err, stalled, d)
	}
}

func latest(ts ...time.Time) time.Time {
	var t time.Time
	for _, x := range ts {
		if x.After(t) {
			t = x
		}
	}
	return t
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// pullRemote takes the connections the runtime made to the remote server as
// peers, and matches each to its dialed channel by address.
func (w *world) pullRemote() {
	if w.remote == nil {
		return
	}
	for p := w.remote.Accept(); p != nil; p = w.remote.Accept() {
		w.peers = append(w.peers, p)
		w.reading[p] = true
		w.pending = append(w.pending, p)
	}
	j := 0
	for _, p := range w.pending {
		matched := false
		for _, r := range w.chans {
			if r.dialed && r.peer == nil && r.laddr != "" && r.laddr == p.RemoteAddr().String() {
				r.peer, matched = p, true
				break
			}
		}
		if !matched {
			w.pending[j] = p
			j++
		}
	}
	w.pending = w.pending[:j]
}

// readPeers lets every reading peer take what arrived, and reports whether
// one took anything.
func (w *world) readPeers() (moved bool) {
	w.pullRemote()
	for _, p := range w.peers {
		if w.reading[p] && len(p.Read(0)) > 0 {
			moved = true
		}
	}
	return moved
}

// pump lets the loops and the reading peers trade until neither has
// anything left to do now, without moving time: a backlog larger than the
// sockets' buffers drains in as many rounds as it takes (RunUntil alone
// gives one a time step).
func (w *world) pump() {
	for i := 0; i < 100000 && w.readPeers(); i++ {
		w.s.Settle()
	}
}

// checkCycles: between turns no read cycle is open (R2: each one that
// delivered ends with OnReadComplete within its wakeup).
func (w *world) checkCycles() {
	for _, r := range w.chans {
		if r.reads > 0 && !r.panicked {
			w.s.Violate("R2", "channel %d: a read cycle delivered %d OnReads and its wakeup ended without OnReadComplete", r.c.ID(), r.reads)
			r.reads = 0
		}
	}
}

// healthy reports whether rec's connection had nothing happen to it that
// may lose bytes: the oracle expects all of its output at its peer.
func (w *world) healthy(r *chanRec) bool {
	return r.c != nil && r.peer != nil && !r.panicked && !r.peer.WasReset() && !r.peer.Invalidated()
}

// calm: with faults off, a throttled listener accepts again, and a new peer
// is echoed; so is every surviving channel (a panic fails only its own).
func (w *world) calm() {
	s := w.s
	s.Advance(200 * time.Millisecond) // past the listener's longest backoff
	if w.ln == nil || w.loopFailed() {
		return
	}
	select {
	case <-w.ln.Closed():
		return // an EBADF on the listener's own number closes it
	default:
	}
	// Every channel that nothing happened to still echoes: a panic, a
	// reset or an invalidated number failed only its own channel.
	var alive []*chanRec
	for _, r := range w.chans {
		if w.healthy(r) && !r.closed && !r.inactive && !w.shut[r.peer] {
			alive = append(alive, r)
			w.reading[r.peer] = true
		}
	}
	s.RunUntil(func() bool { w.pump(); w.checkTimeouts(); return false }, 100*time.Millisecond) // drain what is in flight
	w.checkResumed(alive)
	for _, r := range alive {
		r.mark = len(r.peer.Received())
		if r.peer.Write([]byte("pong")) != 4 {
			r.mark = -1
		}
	}
	s.RunUntil(func() bool {
		w.pump()
		for _, r := range alive {
			if r.mark >= 0 && !r.inactive && !bytes.Contains(r.peer.Received()[r.mark:], []byte("pong")) {
				return false
			}
		}
		return true
	}, time.Second)
	for _, r := range alive {
		if r.mark >= 0 && !r.inactive && !bytes.Contains(r.peer.Received()[r.mark:], []byte("pong")) {
			s.Violate("isolation", "channel %d: a surviving channel did not echo after the faults stopped (its error: %v)", r.c.ID(), r.c.Err())
		}
	}
	p, err := s.Dial(w.ln.Addr())
	if err != nil {
		s.Violate("accept-again", "a new peer could not connect after the faults stopped: %v", err)
		return
	}
	w.peers = append(w.peers, p)
	w.reading[p] = true
	p.Write([]byte("ping"))
	if !s.RunUntil(func() bool { p.Read(0); return bytes.Equal(p.Received(), []byte("ping")) || w.acceptPanicked(p) }, time.Second) {
		s.Violate("accept-again", "a new peer was not served within 1s of the faults stopping (got %q)", p.Received())
	}
}

func (w *world) acceptPanicked(p *looptest.Peer) bool {
	return p.EOF() && w.byAddr[p.LocalAddr().String()] == nil
}

func (w *world) loopFailed() bool {
	for _, l := range w.g.Loops() {
		select {
		case <-l.Done():
			return true
		default:
		}
	}
	return false
}

// stop ends the group as the schedule says, and checks what Shutdown
// promises.
// beginStop starts ending the group as the schedule says.
func (w *world) beginStop() {
	s := w.s
	w.ending = true
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	switch w.sc.End {
	case endGraceful:
		s.Go(func() { w.stopErr = w.g.Shutdown(ctx); w.stopped = true })
		for _, p := range w.peers {
			w.reading[p] = true
		}
	case endForced:
		for _, p := range w.peers {
			w.reading[p] = false
		}
		s.Go(func() { w.stopErr = w.g.Shutdown(ctx); w.stopped = true })
	default:
		s.Go(func() { w.stopErr = w.g.Close(); w.stopped = true })
	}
}

// finishStop forces a forced end, waits for the group to stop, and checks
// what Shutdown promises.
func (w *world) finishStop() {
	s := w.s
	if w.sc.End == endForced {
		// The peers do not read: output stalls, and a write timeout
		// shorter than this fires while the loops drain.
		s.RunUntil(func() bool { w.readPeers(); w.checkTimeouts(); return w.stopped }, ms(w.o.ForceMs))
	}
	w.cancel()
	if !s.RunUntil(func() bool { w.readPeers(); w.checkTimeouts(); return w.stopped }, time.Minute) {
		s.Violate("termination", "the group did not stop within a minute of virtual time")
		return
	}
	w.readPeers()
	err := w.stopErr
	failed := w.loopFailed() && err != nil && errors.Is(err, loop.ErrLoopFailed)
	switch {
	case failed:
	case w.sc.End == endGraceful && err != nil && !errors.Is(err, loop.ErrForced):
		s.Violate("shutdown", "a graceful Shutdown returned %v", err)
	case w.sc.End == endGraceful && err == nil:
		// Every write accepted before it, on a channel that ended cleanly
		// (no error of its own), went out: none failed.
		for _, r := range w.chans {
			if r.c == nil || !w.healthy(r) || r.closed || w.gone[r.peer] || r.c.Err() != nil {
				continue
			}
			for i, wr := range r.writes {
				// A write the channel refused (it had stopped taking writes,
				// after its peer's EOF) was never accepted; one refused for
				// the Shutdown's drain was, before the Shutdown.
				if wr.before && wr.done == 1 && wr.err != nil && !(w.shut[r.peer] && refusedWrite(wr.err)) {
					s.Violate("shutdown", "channel %d: a graceful Shutdown returned nil and the channel ended cleanly, yet write %d failed: %v", r.c.ID(), i, wr.err)
				}
			}
		}
	case w.sc.End == endForced && err != nil && !errors.Is(err, loop.ErrForced) && !errors.Is(err, loop.ErrLoopFailed):
		s.Violate("shutdown", "a forced Shutdown returned %v, which does not say it was forced", err)
	case w.sc.End == endForced && errors.Is(err, loop.ErrForced):
		// The writes the forced close failed say so.
		for _, r := range w.chans {
			if r.c == nil || !w.healthy(r) || r.closed || !errors.Is(r.c.Err(), loop.ErrForced) {
				continue
			}
			for i, wr := range r.writes {
				// A write refused at the door (the channel draining) was
				// never the forced close's to fail.
				if wr.done == 1 && wr.err != nil && !errors.Is(wr.err, loop.ErrForced) && !refusedWrite(wr.err) {
					s.Violate("shutdown", "channel %d: closed by a forced Shutdown, its write %d failed with %v, which does not say it was forced", r.c.ID(), i, wr.err)
				}
			}
		}
	}
}

// final checks what every run must end with.
func (w *world) final() {
	s := w.s
	for _, r := range w.chans {
		if r.c == nil {
			continue
		}
		for i, wr := range r.writes {
			if wr.done != 1 {
				s.Violate("write-once", "channel %d: write %d of %d bytes: done called %d times by the end", r.c.ID(), i, wr.n, wr.done)
			}
		}
		w.checkTimedOutWrites(r)
		if r.peer == nil {
			continue
		}
		got := r.peer.Received()
		if !bytes.HasPrefix(r.out, got) {
			s.Violate("prefix", "channel %d: its peer received %d bytes that are not a prefix of the %d the server wrote (first difference at %d)",
				r.c.ID(), len(got), len(r.out), firstDiff(got, r.out))
		}
		if w.healthy(r) {
			ok := 0
			for _, wr := range r.writes {
				if wr.err == nil && wr.done == 1 {
					ok += wr.n
				} else {
					break
				}
			}
			if len(got)+r.peer.Pending() < ok {
				s.Violate("delivery", "channel %d: %d bytes reported written, %d reached the peer", r.c.ID(), ok, len(got)+r.peer.Pending())
			}
		}
	}
	w.collectDials()
	for i, d := range w.dials {
		if d.results == 0 {
			s.Violate("dial-once", "dial %d (to %v) never answered by the end", i, map[bool]string{true: "the silent remote", false: "a remote"}[d.silent])
			if d.cancel != nil {
				d.cancel() // so that its Group.Dial returns before the bubble ends
				s.Settle()
			}
		}
	}
	w.endContracts()
	if st := w.tables.Steps(); st["eventloop"] == 0 {
		s.Violate("table", "no eventloop step was recorded: the trace is not reaching the checker")
	}
}

// checkTimedOutWrites: the writes a timeout failed say so, with the
// timeout the channel closed with.
func (w *world) checkTimedOutWrites(r *chanRec) {
	err := r.c.Err()
	kind := loop.ErrIdleTimeout
	switch {
	case errors.Is(err, loop.ErrWriteTimeout):
		kind = loop.ErrWriteTimeout
	case !errors.Is(err, loop.ErrIdleTimeout):
		return
	}
	contract := map[error]string{loop.ErrIdleTimeout: "idle-timeout", loop.ErrWriteTimeout: "write-timeout"}[kind]
	if r.timedOut == nil && !r.panicked {
		w.s.Violate(contract, "channel %d closed with %v and its handler was not told", r.c.ID(), err)
	}
	for i, wr := range r.writes {
		if wr.done == 1 && wr.err != nil && !errors.Is(wr.err, kind) && !refusedWrite(wr.err) {
			w.s.Violate(contract, "channel %d closed with %v; its write %d failed with %v, which does not say so", r.c.ID(), err, i, wr.err)
		}
	}
}

// refusedWrite reports whether a write's error says the channel refused it
// (it had stopped taking writes: after its peer's EOF, or draining): a write
// never accepted, which no close failed.
func refusedWrite(err error) bool { return strings.Contains(err.Error(), "takes no new writes") }

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func (sc schedule) String() string {
	var ops []string
	for _, o := range sc.Ops {
		ops = append(ops, o.String())
	}
	return fmt.Sprintf("seed %#x, family %d, %d loops, end %d, half-closure %v, panics %d/10000, profile %+v, options %+v, ops %s",
		sc.Seed, sc.Family, sc.Loops, sc.End, sc.HalfClosure, sc.Panic, sc.Profile, sc.Opts, strings.Join(ops, " "))
}

func newRng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0xbad)) }

// TestSwarmReachesTheTimeouts: the drawn options are not idle. Over 300
// consecutive seeds, channels close by their idle timeouts and by their write
// timeouts, and dials to the remote that never answers time out, so that the
// contracts on them are checked on real cases.
func TestSwarmReachesTheTimeouts(t *testing.T) {
	sum := reachedOver(t, 300)
	t.Logf("timeouts reached: %+v", sum)
	if sum.idle == 0 || sum.write == 0 || sum.connect == 0 {
		t.Errorf("over 300 schedules the timeouts reached were %+v: a contract on them was never checked", sum)
	}
}
