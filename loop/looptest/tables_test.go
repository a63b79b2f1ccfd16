//go:build linux

package looptest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// TestMain fails the package's tests if a loop, or anything else, leaves a
// goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}

// checkedTrace is an Options.Trace that checks every step as it comes and
// keeps the steps and the errors for the test to look at.
type checkedTrace struct {
	tables *looptest.Tables
	mu     sync.Mutex
	steps  []loop.Step
	errs   []error
}

func newCheckedTrace() *checkedTrace { return &checkedTrace{tables: looptest.NewTables()} }

func (c *checkedTrace) trace(s loop.Step) {
	err := c.tables.Check(s)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, s)
	if err != nil {
		c.errs = append(c.errs, err)
	}
}

// recorded returns the steps recorded so far. A loop may still trace a step
// after Shutdown returns (a request it ignores once stopped), so even then the
// steps are read under the lock.
func (c *checkedTrace) recorded() []loop.Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.steps)
}

// verify fails t for every error Check returned and for a machine with no
// step checked.
func (c *checkedTrace) verify(t *testing.T, machines ...string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, err := range c.errs {
		t.Error(err)
	}
	steps := c.tables.Steps()
	for _, m := range machines {
		if steps[m] == 0 {
			t.Errorf("no %s step checked: %v", m, steps)
		}
	}
	t.Logf("checked %v", steps)
}

func shutdown(t *testing.T, g *loop.Group) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// echoOnce sends msg over c and expects it back.
func echoOnce(c net.Conn, msg []byte) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echoed %q, sent %q", got, msg)
	}
	return nil
}

// echoRun serves echo on a group of two loops, runs a few clients against it
// and returns the trace, every step of which was checked as it came.
func echoRun(t *testing.T) *checkedTrace {
	t.Helper()
	ct := newCheckedTrace()
	g := loop.NewGroup(2, &loop.Options{Trace: ct.trace})
	defer shutdown(t, g)
	ln, err := g.Serve(loopback, func(net.Addr) (loop.Handler, *loop.ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		err = echoOnce(c, bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1)))
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return ct
}

// TestTablesEcho: the steps of a real echo server, its loops, listener and
// channels, are a legal path of the tables: the runtime decides nothing the
// tables did not. Four connections take at least 20 channel steps and 4 of
// each other machine; fewer would mean the trace is not reaching the checker.
func TestTablesEcho(t *testing.T) {
	ct := echoRun(t)
	ct.verify(t, "eventloop", "listener", "channel")
	steps := ct.tables.Steps()
	if steps["channel"] < 20 || steps["listener"] < 4 || steps["eventloop"] < 4 {
		t.Fatalf("too few steps checked to mean anything: %v", steps)
	}
}

// TestTablesTampered: a step the runtime did not take as its table says is
// caught, named by machine, id, index and event, and the instance's later
// steps are not checked.
func TestTablesTampered(t *testing.T) {
	ct := echoRun(t)
	ct.verify(t, "eventloop", "listener", "channel")
	steps := ct.recorded()
	// A channel's step with two actions or more, after its first (which
	// leaves the origin open): at in the trace, index among its channel's.
	at, index := -1, 0
	seen := map[uint64]int{}
	for i, s := range steps {
		if s.Machine != "channel" {
			continue
		}
		if seen[s.ID] > 0 && len(s.Actions) > 1 && !s.Rejected {
			at, index = i, seen[s.ID]
			break
		}
		seen[s.ID]++
	}
	if at < 0 {
		t.Fatal("no channel step with two actions recorded")
	}
	tampers := map[string]func(*loop.Step){
		"To":       func(s *loop.Step) { s.To = "abandoned" },
		"actions":  func(s *loop.Step) { s.Actions = s.Actions[1:] },
		"Rejected": func(s *loop.Step) { s.Rejected = !s.Rejected },
	}
	for name, tamper := range tampers {
		t.Run(name, func(t *testing.T) {
			tb := looptest.NewTables()
			var errs []error
			for i, s := range steps {
				if i == at {
					s.Actions = slices.Clone(s.Actions)
					tamper(&s)
				}
				if err := tb.Check(s); err != nil {
					errs = append(errs, err)
				}
			}
			if len(errs) != 1 {
				t.Fatalf("errors %v, want one", errs)
			}
			s := steps[at]
			want := fmt.Sprintf("channel %d step %d %s:", s.ID, index, s.Event)
			if !strings.Contains(errs[0].Error(), want) {
				t.Fatalf("error %q does not name %q", errs[0], want)
			}
			t.Log(errs[0])
		})
	}
}

// TestTablesUnknown: a machine or an event the tables do not have is an error
// that says so.
func TestTablesUnknown(t *testing.T) {
	tb := looptest.NewTables()
	err := tb.Check(loop.Step{Machine: "timer", ID: 1, From: "idle", To: "armed", Event: "arm"})
	if err == nil || !strings.Contains(err.Error(), `unknown machine "timer"`) {
		t.Errorf("unknown machine: %v", err)
	}
	err = tb.Check(loop.Step{Machine: "channel", ID: 1, From: "fresh", To: "active", Event: "registered(maybe)"})
	if err == nil || !strings.Contains(err.Error(), `channel 1 step 0: unknown event "registered(maybe)"`) {
		t.Errorf("unknown event: %v", err)
	}
}

// readInto is a Handler of a dialed channel that passes on what it reads.
type readInto struct {
	loop.NopHandler
	got chan []byte
}

func (h readInto) OnRead(c *loop.Channel, p []byte) { h.got <- bytes.Clone(p) }

// TestTablesDialed: a dialed channel's steps check without its options
// declared; declared, they check with the dialed origin and fail with the
// accepted one.
func TestTablesDialed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = io.Copy(c, c)
			c.Close()
		}
		served <- err
	}()

	ct := newCheckedTrace()
	g := loop.NewGroup(1, &loop.Options{Trace: ct.trace})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := readInto{got: make(chan []byte, 16)}
	c, err := g.Dial(ctx, ln.Addr(), h, nil)
	if err != nil {
		shutdown(t, g)
		t.Fatal(err)
	}
	c.Write([]byte("ping"), nil)
	select {
	case p := <-h.got:
		if string(p) != "ping" {
			t.Errorf("read %q, want ping", p)
		}
	case <-ctx.Done():
		t.Error("no echo")
	}
	c.Close()
	<-c.Closed()
	shutdown(t, g)
	if err := <-served; err != nil {
		t.Error(err)
	}
	ct.verify(t, "eventloop", "channel")

	var own []loop.Step
	for _, s := range ct.recorded() {
		if s.Machine == "channel" && s.ID == c.ID() {
			own = append(own, s)
		}
	}
	if len(own) == 0 || own[0].To != "connecting" {
		t.Fatalf("the dialed channel's steps %v do not start by connecting", own)
	}
	dialed, accepted := sm.DefaultChannelOptions(), sm.DefaultChannelOptions()
	dialed.Origin = sm.ChannelOriginDialed
	for _, o := range []sm.ChannelOptions{dialed, accepted} {
		tb := looptest.NewTables()
		tb.Channel(c.ID(), o)
		var first error
		for _, s := range own {
			if err := tb.Check(s); err != nil && first == nil {
				first = err
			}
		}
		if (first == nil) != (o.Origin == sm.ChannelOriginDialed) {
			t.Errorf("declared %v: %v", o.Origin, first)
		}
	}
}
