package verify_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/fsmkernel/fsmkernel/gen"
	"github.com/fsmkernel/fsmkernel/verify"
)

// A mutation breaks the kernel's tables in memory, as a mistaken edit would, and
// says which property the checker must then report, with a trace.
type mutation struct {
	name    string
	machine string
	// row selects the row to break; apply breaks it (nil removes it).
	row     func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool
	apply   func(m *gen.Machine, r *gen.Row)
	product bool // check the kernel product instead of the machine alone
	// props are the properties of which the checker must report at least one.
	props []string
}

func hasAction(m *gen.Machine, r *gen.Row, name string) bool {
	for _, a := range r.Do {
		if m.Actions[a].Name == name {
			return true
		}
	}
	return false
}

func onEvent(m *gen.Machine, r *gen.Row, name string) bool {
	for _, e := range r.On {
		if m.Events[e].Name == name {
			return true
		}
	}
	return false
}

func fromState(m *gen.Machine, r *gen.Row, name string) bool {
	for _, s := range r.From {
		if m.States[s].Name == name {
			return true
		}
	}
	return false
}

func action(m *gen.Machine, name string) int {
	for i, a := range m.Actions {
		if a.Name == name {
			return i
		}
	}
	panic("no action " + name)
}

func state(m *gen.Machine, name string) int {
	for i, s := range m.States {
		if s.Name == name {
			return i
		}
	}
	panic("no state " + name)
}

var kernelMutations = []mutation{
	{
		name:    "drop the re-arm after spurious readiness",
		machine: "channel",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return fromState(m, r, "reading") && onEvent(m, r, "read") && hasAction(m, r, "countSpurious") && hasAction(m, r, "rearmRead")
		},
		apply: func(m *gen.Machine, r *gen.Row) {
			r.Do = slices.DeleteFunc(slices.Clone(r.Do), func(a int) bool { return a == action(m, "rearmRead") })
		},
		props: []string{verify.PropInvariants},
	},
	{
		name:    "EBADF closes the descriptor a second time",
		machine: "channel",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return onEvent(m, r, "descriptorInvalidated") && fromState(m, r, "active") && hasAction(m, r, "forgetFD")
		},
		apply: func(m *gen.Machine, r *gen.Row) {
			r.Do = append(slices.Clone(r.Do), action(m, "closeFD"))
		},
		props: []string{verify.PropOrder},
	},
	{
		name:    "the loop stops with a channel open",
		machine: "eventloop",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return fromState(m, r, "running") && onEvent(m, r, "shutdownNow") && hasAction(m, r, "forceCloseChannels")
		},
		apply: func(m *gen.Machine, r *gen.Row) {
			r.To = state(m, "stopped")
			r.Do = []int{action(m, "failPendingTasks"), action(m, "closePoller"), action(m, "reportStopped")}
		},
		product: true,
		// The registry refuses the loop's stop while a channel is registered;
		// without the registry model the loop would outlive nothing. The
		// product's obligation sees the stop reported before the channel's
		// close settled, one step earlier.
		props: []string{verify.PropOutlives, verify.PropSyncAccepted, verify.ObligationProperty("channelsSettleBeforeStop")},
	},
	{
		name:    "remove an abnormal answer",
		machine: "channel",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return onEvent(m, r, "loopFailed") && fromState(m, r, "active")
		},
		apply: nil,
		props: []string{verify.PropTotal},
	},
	{
		name:    "readComplete on an empty cycle",
		machine: "channel",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return fromState(m, r, "reading") && onEvent(m, r, "read") && hasAction(m, r, "countSpurious") && hasAction(m, r, "rearmRead")
		},
		apply: func(m *gen.Machine, r *gen.Row) {
			r.Do = append(slices.Clone(r.Do), action(m, "readComplete"))
		},
		props: []string{verify.PropOrder},
	},
}

// without removes the actions named from a row.
func without(names ...string) func(m *gen.Machine, r *gen.Row) {
	return func(m *gen.Machine, r *gen.Row) {
		r.Do = slices.DeleteFunc(slices.Clone(r.Do), func(a int) bool {
			return slices.ContainsFunc(names, func(n string) bool { return m.Actions[a].Name == n })
		})
	}
}

func hasOutcome(pkg *gen.Package, m *gen.Machine, r *gen.Row, event, outcome string) bool {
	e := -1
	for i, ev := range m.Events {
		if ev.Name == event {
			e = i
		}
	}
	if e < 0 || !onEvent(m, r, event) {
		return false
	}
	if r.Outcomes == nil {
		return true
	}
	for _, o := range r.Outcomes {
		if pkg.Outcomes[m.Events[e].Outcome].Values[o].Name == outcome {
			return true
		}
	}
	return false
}

func guardReads(m *gen.Machine, r *gen.Row, text string) bool {
	return r.Guard != nil && strings.Contains(r.Guard.Format(m), text)
}

// obligationMutations break what the kernel's obligations promise; each must
// fail check naming the obligation. Before obligations every one of them but
// "close an invalidated poller descriptor" (notAfter pollerLost) passed check;
// a violation ends the search along its step, so terminal reachable and no
// deadlock may fail beside it.
var obligationMutations = []mutation{
	{
		name:    "a mid-cycle drain drops readComplete",
		machine: "channel",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return onEvent(m, r, "drain") && fromState(m, r, "reading") && hasAction(m, r, "readComplete") && r.To == state(m, "closing")
		},
		apply: without("readComplete"),
		props: []string{verify.ObligationProperty("readCycleEndsWithReadComplete")},
	},
	{
		name:    "a failed epoll_ctl closing the channel drops readComplete",
		machine: "channel",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return onEvent(m, r, "pollerControlFailed") && fromState(m, r, "reading") && hasAction(m, r, "readComplete") && hasOutcome(pkg, m, r, "pollerControlFailed", "otherError")
		},
		apply: without("readComplete"),
		props: []string{verify.ObligationProperty("readCycleEndsWithReadComplete")},
	},
	{
		name:    "a forced shutdown mid-cycle drops readComplete",
		machine: "channel",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return onEvent(m, r, "forcedShutdown") && fromState(m, r, "reading") && hasAction(m, r, "readComplete")
		},
		apply: without("readComplete"),
		props: []string{verify.ObligationProperty("readCycleEndsWithReadComplete")},
	},
	{
		name:    "HUP after the peer's EOF closes without failPendingWrites",
		machine: "channel",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return onEvent(m, r, "hangup") && fromState(m, r, "draining") && hasAction(m, r, "failPendingWrites")
		},
		apply: without("failPendingWrites"),
		props: []string{verify.ObligationProperty("writesSettle")},
	},
	{
		name:    "EOF with writes pending closes at once without failPendingWrites",
		machine: "channel",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return hasOutcome(pkg, m, r, "read", "eof") && r.Outcomes != nil && len(r.Outcomes) == 1 && r.To == state(m, "draining") && hasAction(m, r, "readComplete") && hasAction(m, r, "disarmRead")
		},
		apply: func(m *gen.Machine, r *gen.Row) {
			// The row closes as the output == idle one does, minus the failure:
			// the flushed writes are silently dropped.
			r.To = state(m, "closing")
			r.Do = []int{action(m, "readComplete"), action(m, "deregister")}
			r.Set = append(slices.Clone(r.Set), gen.Update{Var: variable(m, "output"), Value: &gen.Expr{Op: gen.OpConst, Value: 0, Kind: gen.KindEnum, Enum: variable(m, "output")}})
		},
		props: []string{verify.ObligationProperty("writesSettle")},
	},
	{
		name:    "close an invalidated poller descriptor",
		machine: "eventloop",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return onEvent(m, r, "lastChannelClosed") && fromState(m, r, "failing") && guardReads(m, r, "pollerGone") && hasAction(m, r, "forgetPoller") && !guardReads(m, r, "!pollerGone")
		},
		apply: func(m *gen.Machine, r *gen.Row) {
			r.Do = slices.Clone(r.Do)
			r.Do[slices.Index(r.Do, action(m, "forgetPoller"))] = action(m, "closePoller")
		},
		props: []string{verify.ObligationProperty("invalidatedPollerNeverClosed")},
	},
	{
		name:    "a wait that finds the poller invalid while failing is dropped",
		machine: "eventloop",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return fromState(m, r, "failing") && hasOutcome(pkg, m, r, "wakeup", "descriptorInvalid") && r.Outcomes != nil
		},
		apply: func(m *gen.Machine, r *gen.Row) {
			r.Kind, r.Do, r.Set = gen.RowIgnore, nil, nil
		},
		props: []string{verify.ObligationProperty("invalidatedPollerNeverClosed")},
	},
	{
		name:    "a stop that neither closes nor forgets the poller",
		machine: "eventloop",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return onEvent(m, r, "lastChannelClosed") && fromState(m, r, "stopping")
		},
		apply: without("closePoller"),
		props: []string{verify.ObligationProperty("pollerReleased")},
	},
	{
		name:    "a closing channel on a failed loop deregisters",
		machine: "channel",
		row: func(pkg *gen.Package, m *gen.Machine, r *gen.Row) bool {
			return onEvent(m, r, "loopFailed") && fromState(m, r, "active") && !guardReads(m, r, "!delivered")
		},
		apply: func(m *gen.Machine, r *gen.Row) {
			r.Do = slices.Clone(r.Do)
			r.Do[slices.Index(r.Do, action(m, "closeFD"))] = action(m, "deregister")
			r.Set = slices.DeleteFunc(slices.Clone(r.Set), func(u gen.Update) bool { return m.Vars[u.Var].Name == "closeStep" })
		},
		product: true,
		props:   []string{verify.ObligationProperty("noPollerChangeAfterLoss")},
	},
}

func variable(m *gen.Machine, name string) int {
	for i, v := range m.Vars {
		if v.Name == name {
			return i
		}
	}
	panic("no variable " + name)
}

// TestObligationMutationsAreCaught: the tables pass, and each mutation fails
// check naming the obligation it breaks, with a trace from the start; every
// violation's counterexample script fails on the mutated tables and passes on
// the kernel's.
func TestObligationMutationsAreCaught(t *testing.T) {
	pkg := loadFiles(t, nil, kernelSpecs...)
	fixed := pkg
	for _, m := range pkg.Machines {
		res, err := verify.CheckMachine(pkg, m, verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range m.Obligations {
			if !slices.Contains(res.Proven, verify.ObligationProperty(o.Name)) {
				t.Errorf("%s: obligation %s is not proven:\n%s", m.Name, o.Name, verify.Report([]*verify.Result{res}))
			}
		}
	}
	for _, mu := range obligationMutations {
		t.Run(mu.name, func(t *testing.T) {
			pkg, m := mutate(t, mu)
			var res *verify.Result
			var err error
			if mu.product {
				res, err = verify.CheckProduct(pkg, pkg.Products[0], verify.Options{})
			} else {
				res, err = verify.CheckMachine(pkg, m, verify.Options{})
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range res.Violations {
				if slices.Contains(mu.props, v.Property) {
					name := strings.TrimPrefix(v.Property, "obligation ")
					if len(v.Trace) < 2 || v.Trace[0] != "start" || !strings.Contains(v.Message, "obligation \""+name+"\" (../spec/") {
						t.Fatalf("violation without a trace or the obligation's position: %+v", v)
					}
					t.Logf("%s: %s\n  trace: %s", v.Property, v.Message, strings.Join(v.Trace, " -> "))
					replayCounterexamples(t, res, pkg, fixed)
					return
				}
			}
			t.Fatalf("the checker accepted the broken table (want a violation of one of %q):\n%s", mu.props, verify.Report([]*verify.Result{res}))
		})
	}
}

// mutate loads the kernel's tables and applies mu; it returns the package and
// the mutated machine.
func mutate(t *testing.T, mu mutation) (*gen.Package, *gen.Machine) {
	t.Helper()
	pkg := loadFiles(t, nil, kernelSpecs...)
	m, err := verify.Machine(pkg, mu.machine)
	if err != nil {
		t.Fatal(err)
	}
	hit := -1
	for i := range m.Rows {
		if mu.row(pkg, m, &m.Rows[i]) {
			hit = i
			break
		}
	}
	if hit < 0 {
		t.Fatalf("no row of %s matches the mutation", mu.machine)
	}
	if mu.apply == nil {
		m.Rows = slices.Delete(slices.Clone(m.Rows), hit, hit+1)
	} else {
		mu.apply(m, &m.Rows[hit])
	}
	gen.RebuildCells(pkg, m)
	return pkg, m
}

// TestKernelMutationsAreCaught: each mutation fails check with a violation of
// one of the properties it breaks, with a trace from the start; every
// violation's counterexample script fails on the mutated tables and passes on
// the kernel's.
func TestKernelMutationsAreCaught(t *testing.T) {
	fixed := loadFiles(t, nil, kernelSpecs...)
	for _, mu := range kernelMutations {
		t.Run(mu.name, func(t *testing.T) {
			pkg, m := mutate(t, mu)
			var res *verify.Result
			var err error
			if mu.product {
				res, err = verify.CheckProduct(pkg, pkg.Products[0], verify.Options{})
			} else {
				res, err = verify.CheckMachine(pkg, m, verify.Options{})
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range res.Violations {
				if slices.Contains(mu.props, v.Property) {
					if len(v.Trace) < 2 || v.Trace[0] != "start" {
						t.Fatalf("violation without a trace: %+v", v)
					}
					t.Logf("%s: %s\n  trace: %s", v.Property, v.Message, strings.Join(v.Trace, " -> "))
					replayCounterexamples(t, res, pkg, fixed)
					return
				}
			}
			t.Fatalf("the checker accepted the broken table (want a violation of one of %q):\n%s", mu.props, verify.Report([]*verify.Result{res}))
		})
	}
}
