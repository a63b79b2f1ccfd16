package verify

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/looplab/fsm"

	"github.com/fsmkernel/fsmkernel/gen"
)

// Reference runs a machine's table through github.com/looplab/fsm: an
// interpreter that shares nothing with the generated Go. Each row of the table
// becomes one looplab event per (event, outcome) it answers, named
// "readable/data#12" after the row, from the row's states to its target. Guards
// are evaluated on the IR to choose the row; looplab checks the row may fire in
// the current state and moves the state; its after-event callback collects the
// actions. Reject rows are not registered, so looplab itself refuses them.
type Reference struct {
	pkg   *gen.Package
	m     *gen.Machine
	fsm   *fsm.FSM
	vals  []int
	acts  []int
	state map[string]int
}

// NewReference returns the reference machine in its initial state with the
// given option values (indexed like m.Vars; non-options take their initial value).
func NewReference(pkg *gen.Package, m *gen.Machine, options []int) (*Reference, error) {
	r := &Reference{pkg: pkg, m: m, vals: make([]int, len(m.Vars)), state: map[string]int{}}
	for i, v := range m.Vars {
		r.vals[i] = v.Initial
		if v.Option && i < len(options) {
			if options[i] < v.Min || options[i] > v.Max {
				return nil, fmt.Errorf("verify: option %s=%d outside %d..%d", v.Name, options[i], v.Min, v.Max)
			}
			r.vals[i] = options[i]
		}
	}
	for i, s := range m.States {
		r.state[s.Name] = i
	}
	var events []fsm.EventDesc
	callbacks := fsm.Callbacks{}
	for ri, row := range m.Rows {
		if row.Kind == gen.RowReject {
			continue
		}
		do := row.Do
		if row.Kind == gen.RowIgnore {
			do = nil
		}
		for _, e := range row.On {
			outs := row.Outcomes
			if outs == nil {
				outs = nil
				for o := 0; o < m.NumOutcomes(pkg, e); o++ {
					outs = append(outs, o)
				}
			}
			for _, o := range outs {
				name := refEventName(pkg, m, e, o, ri)
				for _, s := range row.From {
					dst := s
					if row.Kind == gen.RowTransition && row.To >= 0 {
						dst = row.To
					}
					events = append(events, fsm.EventDesc{Name: name, Src: []string{m.States[s].Name}, Dst: m.States[dst].Name})
				}
				callbacks["after_"+name] = func(context.Context, *fsm.Event) {
					r.acts = append(r.acts, do...)
				}
			}
		}
	}
	r.fsm = fsm.NewFSM(m.States[m.Initial].Name, events, callbacks)
	return r, nil
}

func refEventName(pkg *gen.Package, m *gen.Machine, e, o, row int) string {
	return pkg.FormatStep(m, e, o) + "#" + strconv.Itoa(row)
}

// Fire delivers (event, outcome). It returns the actions performed, or
// rejected=true when the table rejects the event in the current state.
func (r *Reference) Fire(event, outcome int) (actions []int, rejected bool, err error) {
	if event < 0 || event >= len(r.m.Events) || outcome < 0 || outcome >= r.m.NumOutcomes(r.pkg, event) {
		return nil, false, fmt.Errorf("verify: no event %d outcome %d", event, outcome)
	}
	s := r.State()
	row := r.m.Match(s, event, outcome, r.vals)
	if row < 0 {
		return nil, false, fmt.Errorf("verify: no row answers %s in %s", r.pkg.FormatStep(r.m, event, outcome), r.m.States[s].Name)
	}
	r.acts = r.acts[:0]
	ferr := r.fsm.Event(context.Background(), refEventName(r.pkg, r.m, event, outcome, row))
	var invalid fsm.InvalidEventError
	var unknown fsm.UnknownEventError
	var noTransition fsm.NoTransitionError
	switch {
	case ferr == nil, errors.As(ferr, &noTransition):
	case errors.As(ferr, &invalid), errors.As(ferr, &unknown):
		if r.m.Rows[row].Kind != gen.RowReject {
			return nil, false, fmt.Errorf("verify: looplab refused row %d in %s: %v", row, r.m.States[s].Name, ferr)
		}
		return nil, true, nil
	default:
		return nil, false, ferr
	}
	next := make([]int, len(r.vals))
	r.m.Apply(row, s, r.vals, next)
	r.vals = next
	return append([]int(nil), r.acts...), false, nil
}

// State returns the current state's index.
func (r *Reference) State() int { return r.state[r.fsm.Current()] }

// Vars returns the variables' values, indexed like Machine.Vars.
func (r *Reference) Vars() []int { return append([]int(nil), r.vals...) }

// CheckInvariants returns an error naming the first invariant that does not hold.
func (r *Reference) CheckInvariants() error {
	for _, inv := range r.m.Invariants {
		if inv.Expr.Eval(r.State(), r.vals) == 0 {
			return fmt.Errorf("%s: invariant %s violated", r.m.Name, inv.Name)
		}
	}
	return nil
}
