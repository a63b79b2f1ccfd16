package bench

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/fsmkernel/fsmkernel/bench/lifecycle"
	"github.com/fsmkernel/fsmkernel/gen"
)

// The fixture: the IR of lifecycle.Spec and the walk through it, loaded once.
var (
	fixtureOnce sync.Once
	fixturePkg  *gen.Package
	fixtureWalk []Step
	fixtureErr  error
)

func fixture(tb testing.TB) (*gen.Package, *gen.Machine, []Step) {
	tb.Helper()
	fixtureOnce.Do(func() {
		fixturePkg, fixtureErr = gen.Load(gen.Source{Path: lifecycle.SpecPath, Data: lifecycle.Spec})
		if fixtureErr == nil {
			fixtureWalk, fixtureErr = ParseWalk(fixturePkg, fixturePkg.Machines[0], Lifetimes)
		}
	})
	if fixtureErr != nil {
		tb.Fatal(fixtureErr)
	}
	return fixturePkg, fixturePkg.Machines[0], fixtureWalk
}

func newGenerated(tb testing.TB) lifecycle.Lifecycle {
	tb.Helper()
	m, err := lifecycle.NewLifecycle(lifecycle.DefaultLifecycleOptions())
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func newLooplab(tb testing.TB) *Looplab {
	tb.Helper()
	pkg, m, _ := fixture(tb)
	l, err := NewLooplab(pkg, m)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// BenchmarkFire delivers the walk's events one per iteration, so ns/op is the
// cost of one transition decision, actions included. Both sub-benchmarks run the
// same steps in the same order and start over the same way after a terminal state.
//
// The loops count b.N by hand rather than use b.Loop: on the machines this was
// measured on, b.Loop's bookkeeping costs about 3 ns per iteration, a third of the
// generated Fire, while the plain loop costs under 1 ns. The results are consumed
// (the action count is reported), so nothing is optimized away.
func BenchmarkFire(b *testing.B) {
	_, _, walk := fixture(b)

	b.Run("generated", func(b *testing.B) {
		initial := newGenerated(b)
		m := initial
		var actions int
		i := 0
		b.ResetTimer()
		for range b.N {
			st := walk[i]
			acts, err := m.Fire(lifecycle.LifecycleEvent(st.Event), uint8(st.Outcome))
			if err != nil {
				b.Fatal(err)
			}
			actions += acts.Len()
			if st.Reset {
				m = initial
			}
			if i++; i == len(walk) {
				i = 0
			}
		}
		b.ReportMetric(float64(actions)/float64(b.N), "actions/op")
	})

	b.Run("looplab", func(b *testing.B) {
		l := newLooplab(b)
		var actions int
		i := 0
		b.ResetTimer()
		for range b.N {
			st := walk[i]
			acts, err := l.Fire(st.Event, st.Outcome)
			if err != nil {
				b.Fatal(err)
			}
			actions += len(acts)
			if st.Reset {
				l.Reset()
			}
			if i++; i == len(walk) {
				i = 0
			}
		}
		b.ReportMetric(float64(actions)/float64(b.N), "actions/op")
	})
}

// TestGeneratedFireDoesNotAllocate runs the whole walk through the generated
// machine and requires zero allocations.
func TestGeneratedFireDoesNotAllocate(t *testing.T) {
	_, _, walk := fixture(t)
	initial := newGenerated(t)
	m := initial
	var failed error
	allocs := testing.AllocsPerRun(100, func() {
		for _, st := range walk {
			if _, err := m.Fire(lifecycle.LifecycleEvent(st.Event), uint8(st.Outcome)); err != nil {
				failed = err
			}
			if st.Reset {
				m = initial
			}
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Errorf("the generated Fire allocated %v times per walk of %d events; want 0", allocs, len(walk))
	}
}

// TestWalkCoverage requires the walk to touch every cell that neither rejects nor
// belongs to a terminal state, so the benchmark exercises the whole table.
func TestWalkCoverage(t *testing.T) {
	pkg, m, walk := fixture(t)
	touched := map[int]bool{}
	state := m.Initial
	for _, st := range walk {
		touched[m.CellIndex(state, st.Event, st.Outcome)] = true
		state = m.Apply(m.Match(state, st.Event, st.Outcome, nil), state, nil, nil)
		if st.Reset {
			state = m.Initial
		}
	}
	for s := range m.States {
		if m.States[s].Terminal {
			continue
		}
		for e := range m.Events {
			for o := 0; o < m.NumOutcomes(pkg, e); o++ {
				r := m.Match(s, e, o, nil)
				if m.Rows[r].Kind != gen.RowReject && !touched[m.CellIndex(s, e, o)] {
					t.Errorf("the walk never delivers %s in state %s", pkg.FormatStep(m, e, o), m.States[s].Name)
				}
			}
		}
	}
	t.Logf("%d events in %d lifetimes", len(walk), len(Lifetimes))
}

// TestDifferentialWalk drives both machines through the walk and requires the
// same state and the same actions after every event.
func TestDifferentialWalk(t *testing.T) {
	pkg, m, walk := fixture(t)
	initial := newGenerated(t)
	g := initial
	l := newLooplab(t)
	for i, st := range walk {
		where := "step " + strconv.Itoa(i) + " " + pkg.FormatStep(m, st.Event, st.Outcome) + " in " + g.State().String()
		compareFire(t, where, &g, l, st)
		if st.Reset {
			if !g.Terminal() {
				t.Fatalf("%s: reset from non-terminal state %s", where, g.State())
			}
			g = initial
			l.Reset()
		}
	}
}

// TestDifferentialCells delivers every (state, event, outcome) of the table,
// rejected cells included, to both machines, each brought to the state by the
// shortest path from the initial state.
func TestDifferentialCells(t *testing.T) {
	pkg, m, _ := fixture(t)
	paths := shortestPaths(pkg, m)
	for s := range m.States {
		for e := range m.Events {
			for o := 0; o < m.NumOutcomes(pkg, e); o++ {
				g := newGenerated(t)
				l := newLooplab(t)
				for _, st := range paths[s] {
					compareFire(t, "path to "+m.States[s].Name, &g, l, st)
				}
				compareFire(t, "cell "+m.States[s].Name+" x "+pkg.FormatStep(m, e, o), &g, l, Step{Event: e, Outcome: o})
			}
		}
	}
}

// compareFire delivers st to both machines and fails unless they agree on the
// rejection, the actions and the next state.
func compareFire(t *testing.T, where string, g *lifecycle.Lifecycle, l *Looplab, st Step) {
	t.Helper()
	gActs, gErr := g.Fire(lifecycle.LifecycleEvent(st.Event), uint8(st.Outcome))
	lActs, lErr := l.Fire(st.Event, st.Outcome)
	var gRej *lifecycle.RejectedError
	var lRej *RejectedError
	if gErr != nil && !errors.As(gErr, &gRej) {
		t.Fatalf("%s: generated: %v", where, gErr)
	}
	if lErr != nil && !errors.As(lErr, &lRej) {
		t.Fatalf("%s: looplab: %v", where, lErr)
	}
	if (gRej == nil) != (lRej == nil) {
		t.Fatalf("%s: generated error %v, looplab error %v", where, gErr, lErr)
	}
	var gNames, lNames []string
	for i := 0; i < gActs.Len(); i++ {
		gNames = append(gNames, gActs.At(i).String())
	}
	for _, a := range lActs {
		lNames = append(lNames, lifecycle.LifecycleAction(a).String())
	}
	if !slices.Equal(gNames, lNames) {
		t.Fatalf("%s: generated actions %v, looplab actions %v", where, gNames, lNames)
	}
	if g.State().String() != l.State() {
		t.Fatalf("%s: generated in %s, looplab in %s", where, g.State(), l.State())
	}
}

// shortestPaths returns, for each state, the shortest non-rejected walk to it from
// the initial state (breadth first over the IR; the machine has no variables).
func shortestPaths(pkg *gen.Package, m *gen.Machine) [][]Step {
	paths := make([][]Step, len(m.States))
	seen := make([]bool, len(m.States))
	seen[m.Initial] = true
	queue := []int{m.Initial}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for e := range m.Events {
			for o := 0; o < m.NumOutcomes(pkg, e); o++ {
				r := m.Match(s, e, o, nil)
				if m.Rows[r].Kind == gen.RowReject {
					continue
				}
				next := m.Apply(r, s, nil, nil)
				if !seen[next] {
					seen[next] = true
					paths[next] = append(append([]Step(nil), paths[s]...), Step{Event: e, Outcome: o})
					queue = append(queue, next)
				}
			}
		}
	}
	return paths
}
