package loop

import (
	"bytes"
	"encoding/json"
	"expvar"
	"net"
	"runtime/trace"
	"strings"
	"testing"
	"time"
)

func TestStatsCountRegistrationsAndSum(t *testing.T) {
	checkFDs(t)
	g := NewGroup(2, nil)
	defer shutdown(t, g)
	ln := serveEcho(t, g, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	var conns []net.Conn
	for i := range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := echoOnce(c, "stats"); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// The listener and three channels are registered: the echo proves each
	// channel is active, so its registration was counted before it.
	s := g.Stats()
	if s.Total.Registered != 4 || s.Total.Loop != -1 || len(s.Loops) != 2 {
		t.Fatalf("stats %+v: want 4 registered over 2 loops", s)
	}
	var sum int64
	for i, ls := range s.Loops {
		if ls.Loop != i {
			t.Errorf("loop %d reports index %d", i, ls.Loop)
		}
		sum += ls.Registered
	}
	if sum != s.Total.Registered {
		t.Errorf("loops sum to %d registered, total says %d", sum, s.Total.Registered)
	}
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.Stats().Total.Registered != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after the clients closed: %+v, want the listener alone", g.Stats().Total)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStatsEachNamesEveryFigureOnce(t *testing.T) {
	s := Stats{Registered: 2, SpuriousReadiness: 3, StaleEvents: 4, DescriptorsContained: 5, PanicsContained: 6, ListenerThrottles: 7, AcceptAborted: 8, Rejected: 9}
	seen := map[string]bool{}
	var total float64
	s.Each(func(m Metric) {
		if seen[m.Name] {
			t.Errorf("%s reported twice", m.Name)
		}
		seen[m.Name] = true
		if !strings.HasPrefix(m.Name, "fsmkernel_") || m.Help == "" {
			t.Errorf("metric %+v: want an fsmkernel_ name and help", m)
		}
		if (m.Kind == Counter) != strings.HasSuffix(m.Name, "_total") {
			t.Errorf("%s is a %v: counters, and only they, end in _total", m.Name, m.Kind)
		}
		total += m.Value
	})
	if len(seen) != 8 || total != 2+3+4+5+6+7+8+9 {
		t.Errorf("%d metrics summing to %v: want every figure of Stats once", len(seen), total)
	}
}

func TestPublishExpvar(t *testing.T) {
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	name := "fsmkernel_test_" + t.Name()
	if err := g.PublishExpvar(name); err != nil {
		t.Fatal(err)
	}
	if err := g.PublishExpvar(name); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("publishing %q twice: %v, want an error naming it", name, err)
	}
	var got GroupStats
	if err := json.Unmarshal([]byte(expvar.Get(name).String()), &got); err != nil {
		t.Fatal(err)
	}
	if got.Total.Loop != -1 || len(got.Loops) != 1 {
		t.Errorf("expvar %s = %+v, want the group's stats", name, got)
	}
}

// TestTraceRegions takes a runtime/trace of an echo with TraceRegions on and
// off: the region types appear in the trace only when asked for.
func TestTraceRegions(t *testing.T) {
	for _, on := range []bool{false, true} {
		var buf bytes.Buffer
		if err := trace.Start(&buf); err != nil {
			t.Skipf("a trace is already being taken: %v", err)
		}
		g := NewGroup(1, &Options{TraceRegions: on})
		ln := serveEcho(t, g, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			err = echoOnce(c, "traced")
			c.Close()
		}
		shutdown(t, g)
		trace.Stop()
		if err != nil {
			t.Fatal(err)
		}
		for _, region := range []string{regionWakeup, regionChannel, regionListener, regionEventloop} {
			if got := bytes.Contains(buf.Bytes(), []byte(region)); got != on {
				t.Errorf("TraceRegions %v: region %s in the trace: %v", on, region, got)
			}
		}
	}
}

// BenchmarkEchoTraceRegions is BenchmarkEchoRuntimeOnly with regions off, on
// with no trace running, and on under a running trace (written to a buffer).
func BenchmarkEchoTraceRegions(b *testing.B) {
	for _, mode := range []string{"off", "on", "tracing"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "tracing" {
				var buf bytes.Buffer
				if err := trace.Start(&buf); err != nil {
					b.Skip(err)
				}
				defer trace.Stop()
			}
			benchmarkEchoRuntimeOnly(b, &Options{TraceRegions: mode != "off"}, nil)
		})
	}
}
