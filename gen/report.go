package gen

import (
	"fmt"
	"strings"
)

// MachineStats summarises what the validator established about one machine.
type MachineStats struct {
	Name            string
	States          int
	Terminal        int
	Events          int
	Abnormal        int
	Actions         int
	Vars            int
	Rows            int // plain rows, as expanded
	Declared        int // rows as written: expanded rows keep the position of theirs
	Cells           int // (state, event, outcome) cells
	Answered        int // cells with at least one row
	Transitions     int // cells answered by a transition
	Ignored         int // cells answered by ignore
	Rejected        int // cells answered by reject
	ReachableStates int
	Configs         int // reachable configurations (state x variables)
	Edges           int // transitions between reachable configurations
	CanTerminate    int // reachable configurations from which a terminal one is reachable
}

// Stats computes the statistics of a validated machine.
func Stats(pkg *Package, m *Machine) (MachineStats, error) {
	st := MachineStats{
		Name: m.Name, States: len(m.States), Events: len(m.Events),
		Actions: len(m.Actions), Vars: len(m.Vars), Rows: len(m.Rows),
	}
	for _, s := range m.States {
		if s.Terminal {
			st.Terminal++
		}
	}
	declared := map[Pos]bool{}
	for _, r := range m.Rows {
		declared[r.Pos] = true
	}
	st.Declared = len(declared)
	for _, e := range m.Events {
		if e.Abnormal {
			st.Abnormal++
		}
	}
	for s := range m.States {
		for e := range m.Events {
			for o := 0; o < m.NumOutcomes(pkg, e); o++ {
				st.Cells++
				kinds := map[RowKind]bool{}
				if len(m.Cells[m.CellIndex(s, e, o)]) > 0 {
					st.Answered++
				}
				for _, r := range m.Cells[m.CellIndex(s, e, o)] {
					kinds[m.Rows[r].Kind] = true
				}
				if kinds[RowTransition] {
					st.Transitions++
				}
				if kinds[RowIgnore] {
					st.Ignored++
				}
				if kinds[RowReject] {
					st.Rejected++
				}
			}
		}
	}
	g, err := Explore(pkg, m)
	if err != nil {
		return st, err
	}
	vals := make([]int, len(m.Vars))
	seen := map[int]bool{}
	for _, id := range g.Order {
		seen[g.Space.Decode(id, vals)] = true
	}
	st.ReachableStates = len(seen)
	st.Configs = len(g.Order)
	st.Edges = g.Edges
	st.CanTerminate = len(g.CanTerminate())
	return st, nil
}

// Report renders the check report of every machine of pkg, as `fsmgen check` and
// `make run` print it.
func Report(pkg *Package) (string, error) {
	var b strings.Builder
	for i, m := range pkg.Machines {
		if i > 0 {
			b.WriteByte('\n')
		}
		st, err := Stats(pkg, m)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "machine %s (%s)\n", m.Name, m.File)
		fmt.Fprintf(&b, "  %s\n", firstLine(m.Description))
		fmt.Fprintf(&b, "  states       %3d  (%d terminal; initial %s)\n", st.States, st.Terminal, m.States[m.Initial].Name)
		fmt.Fprintf(&b, "  events       %3d  (%d abnormal)\n", st.Events, st.Abnormal)
		fmt.Fprintf(&b, "  actions      %3d\n", st.Actions)
		fmt.Fprintf(&b, "  variables    %3d\n", st.Vars)
		if st.Declared != st.Rows {
			fmt.Fprintf(&b, "  rows         %3d  (%d as written)\n", st.Rows, st.Declared)
		} else {
			fmt.Fprintf(&b, "  rows         %3d\n", st.Rows)
		}
		fmt.Fprintf(&b, "  cells        %3d answered of %d (state x event x outcome): %d transition, %d ignore, %d reject\n",
			st.Answered, st.Cells, st.Transitions, st.Ignored, st.Rejected)
		fmt.Fprintf(&b, "  reachable    %3d of %d states; %d configurations, %d transitions\n", st.ReachableStates, st.States, st.Configs, st.Edges)
		fmt.Fprintf(&b, "  terminal     reachable from %d of %d reachable configurations\n", st.CanTerminate, st.Configs)
		verdict := "ok: total, deterministic, every state reachable, a terminal state reachable from everywhere"
		if st.Answered != st.Cells || st.CanTerminate != st.Configs || st.ReachableStates != st.States {
			verdict = "FAILED"
		}
		fmt.Fprintf(&b, "  %s\n", verdict)
	}
	return b.String(), nil
}
