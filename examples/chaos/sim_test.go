package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
)

// The simulated mode: the same echo server and the same byte-exact account,
// on a simulated kernel (looptest.Simulate) instead of the real one. The
// clients are the simulator's peers, the faults come from a named Profile, time
// is virtual and every choice comes from the seed, so a run is the same run
// each time: a failing seed is replayed with
//
//	go test ./examples/chaos -run TestChaosSimulated -v -chaos.seed=N -chaos.profile=NAME
//
// It needs go test because a simulation runs in a testing/synctest bubble.
var (
	simSeed    = flag.Uint64("chaos.seed", 0, "the simulated run's seed (0: seeds 1 to 6)")
	simProfile = flag.String("chaos.profile", "", "the simulated kernel's fault profile: "+strings.Join(looptest.ProfileNames(), ", ")+" (empty: vsock and hostile)")
	simRounds  = flag.Int("chaos.rounds", 300, "rounds of client traffic in a simulated run")
)

// simConfig is one simulated run.
type simConfig struct {
	seed    uint64
	profile string
	conns   int
	loops   int
	rounds  int
}

// simClient is one connection of the simulated clients: it writes its
// stream as fast as the connection takes it and checks the echo.
type simClient struct {
	p       *looptest.Peer
	id      uint64
	out, in *stream
	sizes   *rand.Rand
	unsent  []byte // generated, not yet taken by the connection
	r       connResult
	want    []byte
}

func newSimClient(p *looptest.Peer, seed, id uint64) *simClient {
	return &simClient{p: p, id: id, out: newStream(seed, id), in: newStream(seed, id),
		sizes: rand.New(rand.NewPCG(seed, id)), r: connResult{id: id, wrongAt: -1}}
}

func (c *simClient) send() {
	if len(c.unsent) == 0 {
		c.unsent = make([]byte, 1+c.sizes.IntN(8<<10))
		c.out.next(c.unsent)
	}
	n := c.p.Write(c.unsent)
	c.unsent = c.unsent[n:]
	c.r.sent += int64(n)
}

// receive reads what came back and checks it; it reports false once a byte
// differed.
func (c *simClient) receive() bool {
	if c.r.wrongAt >= 0 {
		return false
	}
	b := c.p.Read(0)
	c.want = slices.Grow(c.want[:0], len(b))[:len(b)]
	c.in.next(c.want)
	if i := firstDiff(b, c.want); i >= 0 {
		c.r.wrongAt = c.r.confirmed + int64(i)
		c.r.lost = c.r.sent - c.r.wrongAt
		c.r.cause = fmt.Sprintf("wrong byte at offset %d", c.r.wrongAt)
		return false
	}
	c.r.confirmed += int64(len(b))
	return true
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// dead says how the connection died, or "" while it lives.
func (c *simClient) dead() string {
	switch {
	case c.p.WasReset():
		return "ECONNRESET"
	case c.p.Invalidated():
		return "EBADF: the server's number closed behind it"
	case c.p.EOF():
		return "EOF"
	}
	return ""
}

// simChaos runs the workload on s and writes the report; ok as chaos's.
func simChaos(s *looptest.Sim, cfg simConfig, w io.Writer) (ok bool) {
	prof, err := looptest.NamedProfile(cfg.profile)
	if err != nil {
		fmt.Fprintln(w, "chaos:", err)
		return false
	}
	tables := looptest.NewTables()
	opts := s.Options(&loop.Options{Trace: func(st loop.Step) {
		if err := tables.Check(st); err != nil {
			s.Violate("table", "%v", err)
		}
	}})
	srv, err := startServer(config{loops: cfg.loops}, opts, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 7})
	if err != nil {
		fmt.Fprintln(w, "chaos:", err)
		return false
	}
	fmt.Fprintf(w, "chaos: simulated echo on %d loops, %d clients, %d rounds, profile %s, seed %d\n",
		cfg.loops, cfg.conns, cfg.rounds, cfg.profile, cfg.seed)
	s.SetProfile(prof)

	var (
		results   []connResult
		nextID    uint64
		dialFails int
		lastDial  error
	)
	dial := func() *simClient {
		p, err := s.Dial(srv.ln.Addr())
		if err != nil {
			dialFails++
			lastDial = err
			return nil
		}
		nextID++
		return newSimClient(p, cfg.seed, nextID)
	}
	live := make([]*simClient, cfg.conns)
	retire := func(i int, killed bool, cause string) {
		c := live[i]
		c.r.killed = killed
		if c.r.cause == "" {
			c.r.cause = cause
		}
		results = append(results, c.r)
		live[i] = nil
	}
	// check takes what came back on live[i], and retires it when a byte
	// differed or the connection died; it reports whether it still lives.
	check := func(i int) bool {
		c := live[i]
		if !c.receive() {
			retire(i, false, "")
			return false
		}
		if why := c.dead(); why != "" {
			retire(i, true, why)
			return false
		}
		return true
	}
	turns := func() {
		for k := 0; k < 4*cfg.loops && s.Step(); k++ {
		}
	}
	for round := 0; round < cfg.rounds; round++ {
		for i, c := range live {
			if c == nil {
				live[i] = dial()
				continue
			}
			c.send()
		}
		turns()
		for i, c := range live {
			if c != nil {
				check(i)
			}
		}
		s.Advance(time.Millisecond)
	}

	// The end: stop sending, and wait for the rest of the echo.
	s.RunUntil(func() bool {
		for i, c := range live {
			if c != nil && check(i) && c.r.confirmed < c.r.sent {
				return false
			}
		}
		return true
	}, 30*time.Second)
	for i, c := range live {
		if c == nil {
			continue
		}
		if c.r.confirmed < c.r.sent {
			c.r.lost = c.r.sent - c.r.confirmed
			c.r.cause = "no echo 30 s (virtual) after the end"
		}
		retire(i, false, "")
	}

	stoppedEarly := srv.stoppedEarly()
	r := report{counters: srv.counters(), dialFails: dialFails}
	stopped := false
	s.Go(func() {
		srv.ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.shutdownErr = srv.group.Shutdown(ctx)
		stopped = true
	})
	if !s.RunUntil(func() bool { return stopped }, time.Minute) {
		r.shutdownErr = fmt.Errorf("Shutdown did not return in a minute of virtual time")
	}
	injected := s.Injected()
	names := make([]string, 0, len(injected))
	for n := range injected {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		r.faults = append(r.faults, faultCount{n, injected[n]})
	}
	for _, v := range s.Violations() {
		if v.Contract == "D2" || v.Contract == "D4" {
			r.onClosed++
		}
		r.notes = append(r.notes, fmt.Sprintf("contract %s broken: %s", v.Contract, v.Detail))
	}
	if lastDial != nil {
		r.notes = append(r.notes, fmt.Sprintf("last failed dial: %v", lastDial))
	}
	srv.account(results, &r)
	r.notes = append(r.notes, stoppedEarly...)
	r.stoppedEarly = len(stoppedEarly)
	return r.print(w) && len(s.Violations()) == 0
}

// TestChaosSimulated runs the simulated mode for a few seeds of the vsock and
// hostile profiles (or the seed and profile of the flags) and checks each
// report as TestChaos checks the real kernel's; each run is then run again
// from its seed and must print the same report.
func TestChaosSimulated(t *testing.T) {
	profiles := []string{"vsock", "hostile"}
	if *simProfile != "" {
		profiles = []string{*simProfile}
	}
	seeds := []uint64{1, 2, 3, 4, 5, 6}
	if *simSeed != 0 {
		seeds = []uint64{*simSeed}
	}
	for _, prof := range profiles {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", prof, seed), func(t *testing.T) {
				cfg := simConfig{seed: seed, profile: prof, conns: 6, loops: 2, rounds: *simRounds}
				var outs [2]string
				for i := range outs {
					var out bytes.Buffer
					ok := false
					looptest.Simulate(t, seed, func(s *looptest.Sim) { ok = simChaos(s, cfg, &out) })
					outs[i] = out.String()
					if !ok {
						t.Fatalf("chaos -seed %d -profile %s failed:\n%s", seed, prof, outs[i])
					}
				}
				out := outs[0]
				if outs[1] != out {
					t.Errorf("the same seed printed two reports:\n%s\n---\n%s", out, outs[1])
				}
				if n := field(t, out, "lost bytes"); n != 0 {
					t.Errorf("lost bytes %d, want 0", n)
				}
				if n := field(t, out, "bytes echoed back"); n == 0 {
					t.Errorf("no byte echoed back on the surviving connections:\n%s", out)
				}
				if n := field(t, out, "kinds"); n < 3 {
					t.Errorf("%d kinds of faults injected, want at least 3:\n%s", n, out)
				}
				if !strings.Contains(out, "shutdown: ok\n") {
					t.Errorf("the shutdown was not clean:\n%s", out)
				}
				t.Log("\n" + out)
			})
		}
	}
}
