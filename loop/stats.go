package loop

import (
	"context"
	"expvar"
	"fmt"
	"runtime/trace"
)

// Stats is a snapshot of one loop's figures as plain values: the Counters,
// read one by one (each is exact, the set is not one instant), and how many
// channels and listeners the loop holds.
type Stats struct {
	Loop                 int    // the loop's index in its group
	Registered           int64  // channels and listeners registered now
	SpuriousReadiness    uint64 // see Counters
	StaleEvents          uint64
	DescriptorsContained uint64
	PanicsContained      uint64
	ListenerThrottles    uint64
	AcceptAborted        uint64
	Rejected             uint64
}

// GroupStats is a snapshot of a group: the sum over its loops (Total.Loop is
// -1) and each loop's own.
type GroupStats struct {
	Total Stats
	Loops []Stats
}

// Stats returns a snapshot of the loop's figures. Safe from any goroutine.
func (l *Loop) Stats() Stats {
	c := &l.counters
	return Stats{
		Loop:                 l.id,
		Registered:           l.registered.Load(),
		SpuriousReadiness:    c.SpuriousReadiness.Load(),
		StaleEvents:          c.StaleEvents.Load(),
		DescriptorsContained: c.DescriptorsContained.Load(),
		PanicsContained:      c.PanicsContained.Load(),
		ListenerThrottles:    c.ListenerThrottles.Load(),
		AcceptAborted:        c.AcceptAborted.Load(),
		Rejected:             c.Rejected.Load(),
	}
}

// Stats returns a snapshot of every loop of the group and their sum. Safe from
// any goroutine.
func (g *Group) Stats() GroupStats {
	s := GroupStats{Total: Stats{Loop: -1}, Loops: make([]Stats, len(g.loops))}
	for i, l := range g.loops {
		ls := l.Stats()
		s.Loops[i] = ls
		t := &s.Total
		t.Registered += ls.Registered
		t.SpuriousReadiness += ls.SpuriousReadiness
		t.StaleEvents += ls.StaleEvents
		t.DescriptorsContained += ls.DescriptorsContained
		t.PanicsContained += ls.PanicsContained
		t.ListenerThrottles += ls.ListenerThrottles
		t.AcceptAborted += ls.AcceptAborted
		t.Rejected += ls.Rejected
	}
	return s
}

// MetricKind says how a metric behaves: a counter only grows, a gauge goes up
// and down.
type MetricKind uint8

const (
	Counter MetricKind = iota
	Gauge
)

func (k MetricKind) String() string {
	if k == Gauge {
		return "gauge"
	}
	return "counter"
}

// Metric is one figure of a Stats, described for an exporter.
type Metric struct {
	Name  string // snake case, prefixed fsmkernel_, as Prometheus names them
	Help  string
	Kind  MetricKind
	Value float64
}

// Each calls f with every figure of s, in a fixed order. It is the hook for
// exporters: a Prometheus collector's Collect, or an OpenTelemetry observable
// callback, calls Group.Stats and hands each Metric on, labelling it with the
// loop (Stats.Loop) when it exports the loops one by one. The library imports
// neither.
//
//	func (c collector) Collect(ch chan<- prometheus.Metric) {
//		c.group.Stats().Total.Each(func(m loop.Metric) {
//			ch <- prometheus.MustNewConstMetric(c.desc[m.Name], valueType(m.Kind), m.Value)
//		})
//	}
func (s Stats) Each(f func(Metric)) {
	f(Metric{"fsmkernel_registered", "Channels and listeners registered with the loop.", Gauge, float64(s.Registered)})
	f(Metric{"fsmkernel_spurious_readiness_total", "Readiness reports that found nothing to do; counted, interest kept armed.", Counter, float64(s.SpuriousReadiness)})
	f(Metric{"fsmkernel_stale_events_total", "Poller events of an ended registration, dropped before reaching a new owner.", Counter, float64(s.StaleEvents)})
	f(Metric{"fsmkernel_descriptors_contained_total", "Descriptors found invalidated outside the kernel and never touched again.", Counter, float64(s.DescriptorsContained)})
	f(Metric{"fsmkernel_panics_contained_total", "Panics recovered from user callbacks.", Counter, float64(s.PanicsContained)})
	f(Metric{"fsmkernel_listener_throttles_total", "Accept cycles stopped by descriptor or memory exhaustion.", Counter, float64(s.ListenerThrottles)})
	f(Metric{"fsmkernel_accept_aborted_total", "Connections that died in the backlog, skipped.", Counter, float64(s.AcceptAborted)})
	f(Metric{"fsmkernel_rejected_total", "Events a table rejected (runtime or caller bugs).", Counter, float64(s.Rejected)})
}

// PublishExpvar publishes the group's Stats under name in package expvar
// (served by expvar's handler at /debug/vars), computed at each read. It fails
// if name is taken: expvar names are process-wide and never freed.
func (g *Group) PublishExpvar(name string) error {
	if expvar.Get(name) != nil {
		return fmt.Errorf("loop: expvar %q is already published", name)
	}
	expvar.Publish(name, expvar.Func(func() any { return g.Stats() }))
	return nil
}

// Regions of runtime/trace, when Options.TraceRegions is set and a trace is
// being taken (go test -trace, net/http/pprof's /debug/pprof/trace): one per
// wakeup of the poller, one per transition, typed by machine, with the event
// logged inside it.
const (
	regionWakeup    = "fsmkernel.wakeup"
	regionChannel   = "fsmkernel.channel"
	regionListener  = "fsmkernel.listener"
	regionEventloop = "fsmkernel.eventloop"
)

// tracing reports whether regions are asked for and a trace is being taken.
func (l *Loop) tracing() bool { return l.opts.TraceRegions && trace.IsEnabled() }

// traceRegion starts a region of kind and logs step in it, if step is not
// empty. Callers ask tracing first, so that step is only made when traced.
func traceRegion(kind, step string) *trace.Region {
	ctx := context.Background()
	r := trace.StartRegion(ctx, kind)
	if step != "" {
		trace.Log(ctx, "event", step)
	}
	return r
}
