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
		// without the registry model the loop would outlive nothing.
		props: []string{verify.PropOutlives, verify.PropSyncAccepted},
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

func TestKernelMutationsAreCaught(t *testing.T) {
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
					return
				}
			}
			t.Fatalf("the checker accepted the broken table (want a violation of one of %q):\n%s", mu.props, verify.Report([]*verify.Result{res}))
		})
	}
}
