package gen

import (
	"fmt"
	"strings"
)

// The interpreter of the IR: matching a row for a cell and applying it. The
// validator uses it to explore configurations; verify/ uses it as the reference
// semantics the generated code and looplab/fsm are compared with.

// Match returns the index of the row that answers (state, event, outcome) under
// vals, or -1 when none does. The validator guarantees at most one matches.
func (m *Machine) Match(state, event, outcome int, vals []int) int {
	for _, r := range m.Cells[m.CellIndex(state, event, outcome)] {
		g := m.Rows[r].Guard
		if g == nil || g.Eval(state, vals) != 0 {
			return r
		}
	}
	return -1
}

// Apply performs row r from state with vals: it writes the updated variables into
// next (which may alias vals only if the row sets nothing) and returns the next
// state. Updates read the values before the row, as the generated code does; the
// effects of the row's actions follow, in order.
func (m *Machine) Apply(r, state int, vals, next []int) int {
	row := &m.Rows[r]
	copy(next, vals)
	for _, u := range row.Set {
		next[u.Var] = u.Value.Eval(state, vals)
	}
	if row.Kind == RowTransition {
		for _, a := range row.Do {
			for _, u := range m.Actions[a].Effects {
				next[u.Var] = u.Value.Value
			}
		}
	}
	if row.Kind != RowTransition || row.To < 0 {
		return state
	}
	return row.To
}

// Space numbers the configurations (state, valuation) of a machine.
type Space struct {
	M       *Machine
	strides []int
	NVals   int // number of valuations
}

// maxConfigs bounds the configurations a machine may have; beyond it the tables are
// not small enough to check exhaustively and the spec is rejected.
const maxConfigs = 1 << 22

// NewSpace returns the configuration space of m, or an error if it is too large.
func NewSpace(m *Machine) (*Space, error) {
	sp := &Space{M: m, strides: make([]int, len(m.Vars)), NVals: 1}
	for i := range m.Vars {
		sp.strides[i] = sp.NVals
		sp.NVals *= m.Vars[i].Size()
		if sp.NVals*len(m.States) > maxConfigs {
			return nil, fmt.Errorf("machine %q has more than %d configurations (states x variable values); shrink the variables' domains", m.Name, maxConfigs)
		}
	}
	return sp, nil
}

// Len returns the number of configurations.
func (sp *Space) Len() int { return sp.NVals * len(sp.M.States) }

// Encode returns the number of a configuration.
func (sp *Space) Encode(state int, vals []int) int {
	id := 0
	for i, v := range vals {
		id += (v - sp.M.Vars[i].Min) * sp.strides[i]
	}
	return state*sp.NVals + id
}

// Decode writes the valuation of configuration id into vals and returns its state.
func (sp *Space) Decode(id int, vals []int) int {
	state, rest := id/sp.NVals, id%sp.NVals
	for i := range sp.M.Vars {
		vals[i] = sp.M.Vars[i].Min + rest/sp.strides[i]%sp.M.Vars[i].Size()
	}
	return state
}

// Initial returns the initial configurations: the initial state with every
// combination of option values and the declared initial values of the others.
func (sp *Space) Initial() []int {
	m := sp.M
	vals := make([]int, len(m.Vars))
	for i, v := range m.Vars {
		vals[i] = v.Initial
	}
	var out []int
	var rec func(i int)
	rec = func(i int) {
		if i == len(m.Vars) {
			out = append(out, sp.Encode(m.Initial, vals))
			return
		}
		if !m.Vars[i].Option {
			rec(i + 1)
			return
		}
		for v := m.Vars[i].Min; v <= m.Vars[i].Max; v++ {
			vals[i] = v
			rec(i + 1)
		}
		vals[i] = m.Vars[i].Initial
	}
	rec(0)
	return out
}

// Describe renders a configuration for people: state and variables.
func (sp *Space) Describe(id int) string {
	vals := make([]int, len(sp.M.Vars))
	s := sp.Decode(id, vals)
	var b strings.Builder
	b.WriteString(sp.M.States[s].Name)
	if len(vals) > 0 {
		b.WriteString(" {")
		b.WriteString(describeVals(sp.M, vals, nil))
		b.WriteString("}")
	}
	return b.String()
}

// describeVals renders the variables (all, or those in only) as name=value.
func describeVals(m *Machine, vals []int, only []int) string {
	var parts []string
	for i, v := range m.Vars {
		if only != nil && !containsInt(only, i) {
			continue
		}
		parts = append(parts, v.Name+"="+formatValue(&v, vals[i]))
	}
	return strings.Join(parts, " ")
}

func formatValue(v *Var, x int) string {
	switch v.Kind {
	case KindBool:
		if x != 0 {
			return "true"
		}
		return "false"
	case KindEnum:
		if x >= 0 && x < len(v.Values) {
			return v.Values[x].Name
		}
	}
	return fmt.Sprint(x)
}

func containsInt(s []int, x int) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// Step is one edge of the configuration graph.
type Step struct {
	Event, Outcome, Row int
}

// FormatStep renders an event with its outcome, as in traces: readable(wouldBlock).
func (pkg *Package) FormatStep(m *Machine, event, outcome int) string {
	e := m.Events[event]
	if e.Outcome < 0 {
		return e.Name
	}
	return e.Name + "(" + pkg.Outcomes[e.Outcome].Values[outcome].Name + ")"
}

// Graph is the reachable part of a machine's configuration graph.
type Graph struct {
	Space   *Space
	Order   []int        // reachable configurations in breadth-first order
	Parent  map[int]int  // configuration -> the one it was first reached from (-1 for initial)
	Via     map[int]Step // configuration -> the step that first reached it
	Edges   int          // transitions explored
	Reverse map[int][]int
}

// Explore searches the configurations reachable from the initial ones breadth
// first. Cells with no matching row are skipped (the validator reports them).
func Explore(pkg *Package, m *Machine) (*Graph, error) {
	sp, err := NewSpace(m)
	if err != nil {
		return nil, err
	}
	g := &Graph{Space: sp, Parent: map[int]int{}, Via: map[int]Step{}, Reverse: map[int][]int{}}
	for _, id := range sp.Initial() {
		if _, seen := g.Parent[id]; !seen {
			g.Parent[id] = -1
			g.Order = append(g.Order, id)
		}
	}
	vals := make([]int, len(m.Vars))
	next := make([]int, len(m.Vars))
	for i := 0; i < len(g.Order); i++ {
		id := g.Order[i]
		s := sp.Decode(id, vals)
		for e := range m.Events {
			for o := 0; o < m.NumOutcomes(pkg, e); o++ {
				r := m.Match(s, e, o, vals)
				if r < 0 {
					continue
				}
				ns := m.Apply(r, s, vals, next)
				if !inRange(m, next) {
					continue // reported by the validator as an update out of range
				}
				nid := sp.Encode(ns, next)
				g.Edges++
				g.Reverse[nid] = append(g.Reverse[nid], id)
				if _, seen := g.Parent[nid]; !seen {
					g.Parent[nid] = id
					g.Via[nid] = Step{Event: e, Outcome: o, Row: r}
					g.Order = append(g.Order, nid)
				}
			}
		}
	}
	return g, nil
}

func inRange(m *Machine, vals []int) bool {
	for i, v := range vals {
		if v < m.Vars[i].Min || v > m.Vars[i].Max {
			return false
		}
	}
	return true
}

// Trace returns the shortest path of steps from an initial configuration to id,
// rendered as "event(outcome) -> event -> ...", starting with the initial
// configuration.
func (g *Graph) Trace(pkg *Package, id int) string {
	var steps []string
	for cur := id; g.Parent[cur] >= 0; cur = g.Parent[cur] {
		st := g.Via[cur]
		steps = append(steps, pkg.FormatStep(g.Space.M, st.Event, st.Outcome))
	}
	first := id
	for g.Parent[first] >= 0 {
		first = g.Parent[first]
	}
	out := []string{g.Space.Describe(first)}
	for i := len(steps) - 1; i >= 0; i-- {
		out = append(out, steps[i])
	}
	return strings.Join(out, " -> ")
}

// CanTerminate returns the set of reachable configurations from which a terminal
// state is reachable, by searching backwards from the terminal configurations.
func (g *Graph) CanTerminate() map[int]bool {
	ok := map[int]bool{}
	var queue []int
	vals := make([]int, len(g.Space.M.Vars))
	for _, id := range g.Order {
		if g.Space.M.States[g.Space.Decode(id, vals)].Terminal {
			ok[id] = true
			queue = append(queue, id)
		}
	}
	for i := 0; i < len(queue); i++ {
		for _, p := range g.Reverse[queue[i]] {
			if !ok[p] {
				ok[p] = true
				queue = append(queue, p)
			}
		}
	}
	return ok
}
