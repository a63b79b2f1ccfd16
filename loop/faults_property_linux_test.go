package loop_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
)

// The faults a schedule may draw, each with the calls it applies to.
var faultMenu = []struct {
	op    looptest.Op
	fault looptest.Fault
}{
	{looptest.OpRead, looptest.FaultEAGAIN}, {looptest.OpRead, looptest.FaultEINTR}, {looptest.OpRead, looptest.FaultShort}, {looptest.OpRead, looptest.FaultECONNRESET}, {looptest.OpRead, looptest.FaultEBADF},
	{looptest.OpWrite, looptest.FaultEAGAIN}, {looptest.OpWrite, looptest.FaultEINTR}, {looptest.OpWrite, looptest.FaultShort}, {looptest.OpWrite, looptest.FaultEPIPE}, {looptest.OpWrite, looptest.FaultEBADF},
	{looptest.OpAccept, looptest.FaultEAGAIN}, {looptest.OpAccept, looptest.FaultEINTR}, {looptest.OpAccept, looptest.FaultEMFILE}, {looptest.OpAccept, looptest.FaultENFILE}, {looptest.OpAccept, looptest.FaultENOBUFS},
	{looptest.OpPollerWait, looptest.FaultEINTR}, {looptest.OpPollerWait, looptest.FaultSpuriousReadable}, {looptest.OpPollerWait, looptest.FaultSpuriousEOFHint}, {looptest.OpPollerWait, looptest.FaultEINVAL},
	{looptest.OpPollerControl, looptest.FaultEBADF},
}

// auditedEcho echoes and accounts for every write and every channel it saw.
type auditedEcho struct {
	loop.NopHandler
	mu          sync.Mutex
	channels    []*loop.Channel
	issued      int
	completions map[int]int
}

func (a *auditedEcho) OnActive(c *loop.Channel) {
	a.mu.Lock()
	a.channels = append(a.channels, c)
	a.mu.Unlock()
}

func (a *auditedEcho) OnRead(c *loop.Channel, p []byte) {
	a.mu.Lock()
	id := a.issued
	a.issued++
	a.mu.Unlock()
	c.Write(bytes.Clone(p), func(error) {
		a.mu.Lock()
		a.completions[id]++
		a.mu.Unlock()
	})
}

// TestFaultSchedulesProperty runs echo traffic through random fault schedules
// (pgregory.net/rapid draws the faults, their rates and the seed, and shrinks a
// failure to a minimal schedule) on a group of two loops, and requires: no panic
// escapes; bytes on connections the faults did not kill come back whole and in
// order, and killed connections never see corrupted or reordered bytes; every
// write's completion is reported exactly once; every channel ends closed; no
// syscall touches a number after it was found invalid; the group stops, with an
// error only when a poller failed; and (checked when the test ends) no
// descriptor or goroutine leaks.
func TestFaultSchedulesProperty(t *testing.T) {
	loop.CheckFDs(t)
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == "100" {
		f.Value.Set("12") // each case runs real traffic; -rapid.checks raises it
		defer f.Value.Set("100")
	}
	var injected, writes, channels atomic.Int64
	rapid.Check(t, func(rt *rapid.T) {
		seed := rapid.Uint64().Draw(rt, "seed")
		var rules []looptest.Rule
		pollerFault := false
		for i, n := 0, rapid.IntRange(0, 5).Draw(rt, "faults"); i < n; i++ {
			m := faultMenu[rapid.IntRange(0, len(faultMenu)-1).Draw(rt, "fault")]
			r := looptest.Rule{Op: m.op, Fault: m.fault, Probability: rapid.Float64Range(0.01, 0.3).Draw(rt, "rate")}
			switch m.fault {
			case looptest.FaultEINVAL, looptest.FaultEBADF, looptest.FaultECONNRESET, looptest.FaultEPIPE:
				r.Count = rapid.IntRange(1, 2).Draw(rt, "count") // killers: a few
			}
			if m.op == looptest.OpPollerWait && m.fault == looptest.FaultEINVAL {
				pollerFault = true
			}
			rules = append(rules, r)
		}
		inj := looptest.NewInjector(seed, rules...)
		g := loop.NewGroup(2, inj.Options(nil))
		audit := &auditedEcho{completions: map[int]int{}}
		ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, func(net.Addr) (loop.Handler, *loop.ChannelOptions) { return audit, nil }, nil)
		if err != nil {
			// An injected epoll_wait failure may stop both loops before Serve
			// reaches one: the group then refuses, and says why.
			cerr := g.Close()
			if pollerFault && errors.Is(err, loop.ErrClosed) && errors.Is(cerr, loop.ErrLoopFailed) {
				return
			}
			rt.Fatalf("serve: %v (group: %v)", err, cerr)
		}
		var wg sync.WaitGroup
		var corrupt atomic.Value
		clients := rapid.IntRange(1, 4).Draw(rt, "clients")
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if err := faultyEchoClient(ln.Addr(), seed+uint64(i)); err != nil {
					corrupt.Store(err)
				}
			}(i)
		}
		wg.Wait()
		if err := corrupt.Load(); err != nil {
			g.Close()
			rt.Fatalf("%v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = g.Shutdown(ctx)
		if err != nil && !pollerFault && inj.Injected(looptest.FaultEBADF) == 0 {
			rt.Fatalf("shutdown failed without a poller fault: %v", err)
		}
		if ctx.Err() != nil {
			rt.Fatalf("the group did not stop within 10 s: %v", err)
		}
		audit.mu.Lock()
		defer audit.mu.Unlock()
		for _, c := range audit.channels {
			select {
			case <-c.Closed():
			default:
				rt.Fatalf("channel %d is not closed after the group stopped", c.ID())
			}
		}
		for id := 0; id < audit.issued; id++ {
			if n := audit.completions[id]; n != 1 {
				rt.Fatalf("write %d of %d completed %d times", id, audit.issued, n)
			}
		}
		if n := inj.CallsOnClosed(); n != 0 {
			rt.Fatalf("%d syscalls on numbers already found invalid (D2); the first on %s", n, inj.FirstCallOnClosed())
		}
		for _, n := range inj.Counts() {
			injected.Add(int64(n))
		}
		writes.Add(int64(audit.issued))
		channels.Add(int64(len(audit.channels)))
	})
	// The property must not hold vacuously: faults were injected and data flowed.
	if injected.Load() == 0 || writes.Load() == 0 || channels.Load() == 0 {
		t.Fatalf("vacuous run: %d faults injected, %d echo writes, %d channels", injected.Load(), writes.Load(), channels.Load())
	}
	t.Logf("%d faults injected, %d echo writes on %d channels", injected.Load(), writes.Load(), channels.Load())
}

// faultyEchoClient sends random bytes and reads the echo. The connection may be
// killed by a fault; what comes back before that must be exactly a prefix of
// what was sent. It returns an error only for corrupted or reordered bytes.
func faultyEchoClient(addr net.Addr, seed uint64) error {
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return nil // the listener may be throttled or its loop failed
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	r := rand.New(rand.NewPCG(seed, 7))
	sent := make([]byte, 1+r.IntN(256<<10))
	for i := range sent {
		sent[i] = byte(r.Uint32())
	}
	go c.Write(sent)
	got := make([]byte, len(sent))
	n, _ := io.ReadFull(c, got)
	if !bytes.Equal(got[:n], sent[:n]) {
		return errCorrupt{n}
	}
	return nil
}

type errCorrupt struct{ n int }

func (e errCorrupt) Error() string {
	return "echoed bytes differ from the bytes sent within the first " + itoa(e.n) + " bytes"
}

func itoa(n int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}
