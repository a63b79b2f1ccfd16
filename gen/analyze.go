package gen

import (
	"fmt"
	"strconv"
	"strings"
)

// analyze checks a resolved machine as a table: every (state, event, outcome,
// valuation) answered exactly once, abnormal events answered by transitions, no
// transitions out of terminal states, updates within their domains, every state
// reachable, and a terminal state reachable from every reachable configuration.

// maxCellValuations bounds the valuations enumerated for one cell: the product of
// the domains of the variables its rows read.
const maxCellValuations = 1 << 16

func analyze(pkg *Package, m *Machine, d *diags) {
	buildCells(pkg, m)
	for _, row := range m.Rows {
		if len(row.Do) > m.MaxActions {
			m.MaxActions = len(row.Do)
		}
	}
	before := len(d.list)
	checkCells(pkg, m, d)
	if len(d.list) != before {
		return // reachability over an incomplete table would only repeat the problems
	}
	checkReachability(pkg, m, d)
}

// RebuildCells recomputes m.Cells, m.MaxOutcomes and m.MaxActions after its rows
// were changed in memory (the mutation tests of verify/ do this); it does not
// validate.
func RebuildCells(pkg *Package, m *Machine) {
	buildCells(pkg, m)
	m.MaxActions = 0
	for _, row := range m.Rows {
		if len(row.Do) > m.MaxActions {
			m.MaxActions = len(row.Do)
		}
	}
}

func buildCells(pkg *Package, m *Machine) {
	m.MaxOutcomes = 1
	for e := range m.Events {
		if n := m.NumOutcomes(pkg, e); n > m.MaxOutcomes {
			m.MaxOutcomes = n
		}
	}
	m.Cells = make([][]int, len(m.States)*len(m.Events)*m.MaxOutcomes)
	for ri, row := range m.Rows {
		for _, s := range row.From {
			for _, e := range row.On {
				outs := row.Outcomes
				if outs == nil {
					for o := 0; o < m.NumOutcomes(pkg, e); o++ {
						outs = append(outs, o)
					}
				}
				for _, o := range outs {
					i := m.CellIndex(s, e, o)
					m.Cells[i] = append(m.Cells[i], ri)
				}
			}
		}
	}
}

func (m *Machine) cellName(pkg *Package, s, e, o int) string {
	ev := m.Events[e]
	out := fmt.Sprintf("state %q does not answer event %q", m.States[s].Name, ev.Name)
	if ev.Outcome >= 0 {
		out += fmt.Sprintf(" outcome %q", pkg.Outcomes[ev.Outcome].Values[o].Name)
	}
	return out
}

func checkCells(pkg *Package, m *Machine, d *diags) {
	vals := make([]int, len(m.Vars))
	next := make([]int, len(m.Vars))
	reportedPair := map[[2]int]bool{}
	reportedRow := map[string]bool{}
	for s := range m.States {
		for e := range m.Events {
			for o := 0; o < m.NumOutcomes(pkg, e); o++ {
				rows := m.Cells[m.CellIndex(s, e, o)]
				if len(rows) == 0 {
					d.add(m.States[s].Pos, "%s", m.cellName(pkg, s, e, o))
					continue
				}
				var used []int
				for _, r := range rows {
					used = m.Rows[r].Guard.Vars(used)
					for _, u := range m.Rows[r].Set {
						used = u.Value.Vars(used)
					}
				}
				n := 1
				for _, v := range used {
					n *= m.Vars[v].Size()
				}
				if n > maxCellValuations {
					d.add(m.Rows[rows[0]].Pos, "the rows answering state %q event %q read variables with %d combined values; at most %d can be checked", m.States[s].Name, m.Events[e].Name, n, maxCellValuations)
					continue
				}
				for i, v := range m.Vars {
					vals[i] = v.Min
				}
				var missing []string
				for k := 0; k < n; k++ {
					rest := k
					for _, v := range used {
						size := m.Vars[v].Size()
						vals[v] = m.Vars[v].Min + rest%size
						rest /= size
					}
					var matched []int
					for _, r := range rows {
						if g := m.Rows[r].Guard; g == nil || g.Eval(s, vals) != 0 {
							matched = append(matched, r)
						}
					}
					switch {
					case len(matched) == 0:
						missing = append(missing, describeVals(m, vals, used))
					case len(matched) > 1:
						for i := 1; i < len(matched); i++ {
							pair := [2]int{matched[0], matched[i]}
							if reportedPair[pair] {
								continue
							}
							reportedPair[pair] = true
							a, b := m.Rows[pair[0]], m.Rows[pair[1]]
							when := ""
							if len(used) > 0 {
								when = " when " + describeVals(m, vals, used)
							}
							d.add(b.Pos, "nondeterministic: this row and the row at line %d both answer state %q event %s%s", a.Pos.Line, m.States[s].Name, strconv.Quote(pkg.FormatStep(m, e, o)), when)
						}
					default:
						checkAnswer(pkg, m, d, s, e, o, matched[0], vals, next, reportedRow)
					}
				}
				if len(missing) == n && len(used) == 0 {
					d.add(m.States[s].Pos, "%s", m.cellName(pkg, s, e, o))
				} else if len(missing) > 0 {
					shown := missing
					if len(shown) > 4 {
						shown = append(shown[:4:4], fmt.Sprintf("and %d more", len(missing)-4))
					}
					d.add(m.States[s].Pos, "%s when %s", m.cellName(pkg, s, e, o), strings.Join(shown, "; "))
				}
			}
		}
	}
}

// checkAnswer checks the one row answering a cell under one valuation.
func checkAnswer(pkg *Package, m *Machine, d *diags, s, e, o, r int, vals, next []int, reported map[string]bool) {
	row := &m.Rows[r]
	once := func(key string, format string, args ...any) {
		k := strconv.Itoa(r) + "/" + key
		if reported[k] {
			return
		}
		reported[k] = true
		d.add(row.Pos, format, args...)
	}
	st, ev := m.States[s], m.Events[e]
	if ev.Abnormal && !st.Terminal && row.Kind != RowTransition {
		kind := "ignores"
		if row.Kind == RowReject {
			kind = "rejects"
		}
		once("abnormal/"+st.Name+"/"+ev.Name, "non-terminal state %q %s abnormal event %q: abnormal events must be answered by a transition", st.Name, kind, ev.Name)
	}
	if st.Terminal && row.Kind == RowTransition {
		if row.To >= 0 && row.To != s {
			once("leave/"+st.Name, "terminal state %q has a transition to %q: terminal states are final", st.Name, m.States[row.To].Name)
		}
		if len(row.Do) > 0 {
			once("act/"+st.Name, "terminal state %q performs actions on event %q: nothing may happen after a terminal state (use ignore or reject)", st.Name, ev.Name)
		}
	}
	if len(row.Set) > 0 {
		m.Apply(r, s, vals, next)
		for _, u := range row.Set {
			v := &m.Vars[u.Var]
			if x := next[u.Var]; x < v.Min || x > v.Max {
				when := ""
				if used := u.Value.Vars(nil); len(used) > 0 {
					when = " when " + describeVals(m, vals, used)
				}
				once("range/"+v.Name, "update of %q gives %d, outside %d..%d, in state %q on %s%s", v.Name, x, v.Min, v.Max, st.Name, strconv.Quote(pkg.FormatStep(m, e, o)), when)
			}
		}
	}
}

func checkReachability(pkg *Package, m *Machine, d *diags) {
	g, err := Explore(pkg, m)
	if err != nil {
		d.add(m.Pos, "%v", err)
		return
	}
	vals := make([]int, len(m.Vars))
	reached := make([]bool, len(m.States))
	for _, id := range g.Order {
		reached[g.Space.Decode(id, vals)] = true
	}
	for s, st := range m.States {
		if !reached[s] {
			d.add(st.Pos, "state %q is unreachable from initial state %q", st.Name, m.States[m.Initial].Name)
		}
	}
	ok := g.CanTerminate()
	stuck := make([]bool, len(m.States))
	for _, id := range g.Order {
		if ok[id] {
			continue
		}
		s := g.Space.Decode(id, vals)
		if stuck[s] {
			continue
		}
		stuck[s] = true
		d.add(m.States[s].Pos, "no terminal state is reachable from state %q in configuration %s, reached by: %s", m.States[s].Name, g.Space.Describe(id), g.Trace(pkg, id))
	}
}
