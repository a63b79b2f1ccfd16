package bench

import (
	"context"
	"fmt"

	"github.com/fsmkernel/fsmkernel/gen"
	"github.com/looplab/fsm"
)

// Looplab is a github.com/looplab/fsm machine equivalent to one machine of the
// generator's IR, driven with the IR's event and outcome numbers.
//
// The translation:
//
//   - Each (event, outcome) pair is one looplab event named "event/outcome"
//     ("readable/wouldBlock"), or "event" for events that carry no outcome:
//     looplab events carry no data, so the outcome must be part of the name.
//   - A transition row becomes a looplab transition; its actions are collected by
//     an after_event callback from a table keyed by (source state, event name).
//   - An ignore row, and a transition row that stays in its state, becomes a
//     looplab self-transition. looplab answers those with NoTransitionError after
//     running the after_event callbacks, so Fire treats that error as success:
//     the event was decided (stay, with the row's actions) exactly as the
//     generated code decides it.
//   - A reject row registers nothing, so looplab answers InvalidEventError, which
//     Fire returns as a rejection.
//
// looplab/fsm has no guards or variables, so NewLooplab refuses machines that
// use them.
type Looplab struct {
	FSM     *fsm.FSM
	names   [][]string // [event][outcome] -> looplab event name
	initial string
	actions map[transitionKey][]int
	got     []int // actions of the current event, set by the after_event callback
	ctx     context.Context
}

type transitionKey struct {
	src, event string
}

// RejectedError is returned by Looplab.Fire for an event the table rejects in the
// current state.
type RejectedError struct {
	State, Event string
	Err          error // looplab's error
}

func (e *RejectedError) Error() string {
	return "looplab: state " + e.State + " rejects event " + e.Event + ": " + e.Err.Error()
}

func (e *RejectedError) Unwrap() error { return e.Err }

// LooplabEventName returns the looplab event name of (event, outcome) in m:
// "event/outcome", or "event" when the event carries no outcome.
func LooplabEventName(pkg *gen.Package, m *gen.Machine, event, outcome int) string {
	e := m.Events[event]
	if e.Outcome < 0 {
		return e.Name
	}
	return e.Name + "/" + pkg.Outcomes[e.Outcome].Values[outcome].Name
}

// NewLooplab builds the looplab/fsm machine equivalent to m, in m's initial state.
func NewLooplab(pkg *gen.Package, m *gen.Machine) (*Looplab, error) {
	if len(m.Vars) > 0 {
		return nil, fmt.Errorf("machine %q has variables; looplab/fsm has none", m.Name)
	}
	l := &Looplab{
		names:   make([][]string, len(m.Events)),
		initial: m.States[m.Initial].Name,
		actions: map[transitionKey][]int{},
		ctx:     context.Background(),
	}
	for e := range m.Events {
		for o := 0; o < m.NumOutcomes(pkg, e); o++ {
			l.names[e] = append(l.names[e], LooplabEventName(pkg, m, e, o))
		}
	}

	// One EventDesc per (event name, destination), in table order, so that the
	// looplab machine is built deterministically.
	type descKey struct{ name, dst string }
	index := map[descKey]int{}
	var events fsm.Events
	for s, st := range m.States {
		for e := range m.Events {
			for o, name := range l.names[e] {
				rows := m.Cells[m.CellIndex(s, e, o)]
				if len(rows) != 1 || m.Rows[rows[0]].Guard != nil {
					return nil, fmt.Errorf("machine %q: state %q event %q is not answered by exactly one unguarded row; looplab/fsm has no guards",
						m.Name, st.Name, name)
				}
				row := &m.Rows[rows[0]]
				if row.Kind == gen.RowReject {
					continue
				}
				dst := st.Name
				if row.Kind == gen.RowTransition && row.To >= 0 {
					dst = m.States[row.To].Name
				}
				if row.Kind == gen.RowTransition && len(row.Do) > 0 {
					l.actions[transitionKey{st.Name, name}] = row.Do
				}
				k := descKey{name, dst}
				i, ok := index[k]
				if !ok {
					i = len(events)
					index[k] = i
					events = append(events, fsm.EventDesc{Name: name, Dst: dst})
				}
				events[i].Src = append(events[i].Src, st.Name)
			}
		}
	}
	l.FSM = fsm.NewFSM(l.initial, events, fsm.Callbacks{
		"after_event": func(_ context.Context, e *fsm.Event) {
			l.got = l.actions[transitionKey{e.Src, e.Event}]
		},
	})
	return l, nil
}

// Fire delivers event with outcome (0 for events that carry none) and returns the
// actions of the row that answered, or a *RejectedError. The returned slice is
// shared with the machine: do not modify it.
func (l *Looplab) Fire(event, outcome int) ([]int, error) {
	l.got = nil
	err := l.FSM.Event(l.ctx, l.names[event][outcome])
	switch err.(type) {
	case nil, fsm.NoTransitionError:
		return l.got, nil
	case fsm.InvalidEventError:
		return nil, &RejectedError{State: l.FSM.Current(), Event: l.names[event][outcome], Err: err}
	}
	return nil, err
}

// State returns the name of the current state.
func (l *Looplab) State() string { return l.FSM.Current() }

// Reset puts the machine back in its initial state, as creating a new one would.
func (l *Looplab) Reset() { l.FSM.SetState(l.initial) }
