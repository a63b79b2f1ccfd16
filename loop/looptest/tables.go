package looptest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/fsmkernel/fsmkernel/loop"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// Tables checks that the steps a runtime recorded are a legal path of the
// generated tables: that the runtime decided nothing its tables did not. Give
// Check every step a loop's Options.Trace receives, as they come or
// afterwards from a log; it is safe for concurrent use, as Trace is called
// from the goroutine of every loop.
//
// Tables keeps one fresh generated machine for each instance, a (Machine, ID)
// pair, and replays each step of the instance on it: the table must answer
// from the step's From state, exactly its To state, its actions in order and
// its Rejected. Eventloop ids are the loops' indices in their group, so use
// one Tables per Group, or per Loop made with New; channel and listener ids
// are unique in the process.
//
// An eventloop or listener machine has its default options. A channel's
// options are those declared with Channel; undeclared, they are
// DefaultChannelOptions (or those of ChannelDefaults) with the Origin the
// steps show. Until a step tells the
// origins apart (the first registered(ok), which takes an accepted channel to
// active and a dialed one, with connectSocket, to connecting), the steps are
// replayed under both, and the origin whose table answers as recorded is
// kept. A channel whose loop.ChannelOptions change AutoRead, HalfClosure,
// NoBackpressure, CrashOnInvalidDescriptor or RepanicHandlerPanics, as a
// loop.Conn's do, must be declared.
type Tables struct {
	mu        sync.Mutex
	instances map[instanceKey]*instance
	steps     map[string]int
	defaults  sm.ChannelOptions // for undeclared channels, Origin aside
}

// instanceKey names an instance: a machine, and its id among that machine's.
type instanceKey struct {
	machine string
	id      uint64
}

// instance is one machine's replay. It holds one replay of each option set
// still possible: two for a channel whose origin no step has told apart yet.
type instance struct {
	replays []replay
	steps   int  // the steps checked so far
	failed  bool // a step failed: the rest of the path says nothing more
}

// replay fires an event, with its outcome, on one generated machine.
type replay struct {
	label string // the options it stands for, when several are possible
	fire  func(ev, out uint8) answer
}

// answer is what a table answers to a step.
type answer struct {
	from, to string
	actions  []string
	rejected bool
}

func (a answer) equal(b answer) bool {
	return a.from == b.from && a.to == b.to && a.rejected == b.rejected && slices.Equal(a.actions, b.actions)
}

func (a answer) String() string {
	return fmt.Sprintf("%s -> %s %v (rejected %v)", a.from, a.to, a.actions, a.rejected)
}

// NewTables returns a Tables that has checked no step.
func NewTables() *Tables {
	return &Tables{instances: map[instanceKey]*instance{}, steps: map[string]int{}, defaults: sm.DefaultChannelOptions()}
}

// ChannelDefaults sets the options of the channels not declared with Channel
// from now on, but for Origin, which the steps still tell: for a server whose
// channels share options (loop.ChannelOptions.machine maps them).
func (t *Tables) ChannelDefaults(o sm.ChannelOptions) {
	if _, err := channelReplay("", o); err != nil {
		panic(fmt.Sprintf("looptest: Tables.ChannelDefaults(%+v): %v", o, err))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.defaults = o
}

// Channel declares the options of the channel with this id, which its steps
// are then replayed with. It must come before the channel's first step reaches
// Check; as a channel's id is known only once the channel exists, a test that
// declares options records the steps and checks them afterwards. It panics on
// options outside their domain and on a channel already being checked.
func (t *Tables) Channel(id uint64, o sm.ChannelOptions) {
	r, err := channelReplay("", o)
	if err != nil {
		panic(fmt.Sprintf("looptest: Tables.Channel(%d, %+v): %v", id, o, err))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := instanceKey{"channel", id}
	if t.instances[k] != nil {
		panic(fmt.Sprintf("looptest: Tables.Channel(%d): declared after the channel's first step", id))
	}
	t.instances[k] = &instance{replays: []replay{r}}
}

// Check replays s on its instance's machine and returns nil when the table
// answers as recorded. Otherwise it returns an error that names the machine,
// the id, the step's index among the instance's, the event, what the runtime
// recorded and what the table answers; or, for a machine or event it does not
// know, one saying so. After an instance's first error its later steps are not
// checked and Check returns nil for them: the first error is the one that
// matters.
func (t *Tables) Check(s loop.Step) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := instanceKey{s.Machine, s.ID}
	in := t.instances[k]
	if in == nil {
		in = &instance{}
		t.instances[k] = in
		switch s.Machine {
		case "eventloop":
			m, _ := sm.NewEventloop(sm.DefaultEventloopOptions())
			in.replays = []replay{{fire: replayer(m.Fire, m.State)}}
		case "listener":
			m, _ := sm.NewListener(sm.DefaultListenerOptions())
			in.replays = []replay{{fire: replayer(m.Fire, m.State)}}
		case "channel":
			o := t.defaults
			o.Origin = sm.ChannelOriginAccepted
			accepted, _ := channelReplay("origin accepted", o)
			o.Origin = sm.ChannelOriginDialed
			dialed, _ := channelReplay("origin dialed", o)
			in.replays = []replay{accepted, dialed}
		default:
			in.failed = true
			return fmt.Errorf("looptest: %s %d: unknown machine %q", s.Machine, s.ID, s.Machine)
		}
	}
	if in.failed {
		return nil
	}
	i := in.steps
	in.steps++
	t.steps[s.Machine]++
	ev, ok := events[s.Machine][s.Event]
	if !ok {
		in.failed = true
		return fmt.Errorf("looptest: %s %d step %d: unknown event %q", s.Machine, s.ID, i, s.Event)
	}
	recorded := answer{from: s.From, to: s.To, actions: s.Actions, rejected: s.Rejected}
	var answers []string
	kept := in.replays[:0]
	for _, r := range in.replays {
		a := r.fire(ev.ev, ev.out)
		if a.equal(recorded) {
			kept = append(kept, r)
			continue
		}
		if r.label != "" {
			answers = append(answers, a.String()+" with "+r.label)
		} else {
			answers = append(answers, a.String())
		}
	}
	if len(kept) == 0 {
		in.failed = true
		return fmt.Errorf("looptest: %s %d step %d %s: the runtime recorded %v; the table answers %s",
			s.Machine, s.ID, i, s.Event, recorded, strings.Join(answers, ", or "))
	}
	in.replays = kept
	return nil
}

// Steps returns the number of steps checked, by machine ("eventloop",
// "channel", "listener"), so that a test can tell that it checked something.
// The steps of an instance after its first error are not counted.
func (t *Tables) Steps() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.steps)
}

// channelReplay returns a replay of a fresh channel machine with options o.
func channelReplay(label string, o sm.ChannelOptions) (replay, error) {
	m, err := sm.NewChannel(o)
	return replay{label: label, fire: replayer(m.Fire, m.State)}, err
}

// replayer returns fire's answers as the trace renders them; state is the
// machine's state, read before and after.
func replayer[E ~uint8, A interface {
	Len() int
	At(int) X
}, X, S fmt.Stringer](fire func(E, uint8) (A, error), state func() S) func(ev, out uint8) answer {
	return func(ev, out uint8) answer {
		from := state().String()
		acts, err := fire(E(ev), out)
		a := answer{from: from, to: state().String(), actions: make([]string, acts.Len()), rejected: err != nil}
		for i := range a.actions {
			a.actions[i] = acts.At(i).String()
		}
		return a
	}
}

// event is an event number with its outcome, as a machine's Fire takes them.
type event struct{ ev, out uint8 }

// events maps each machine's events, by the name a loop.Step gives them
// ("close", "read(wouldBlock)"), to what Fire takes. Which outcomes an event
// carries the generated code says (Outcomes, OutcomeString).
var events = map[string]map[string]event{
	"eventloop": eventNames[sm.EventloopEvent](sm.EventloopEventCount),
	"listener":  eventNames[sm.ListenerEvent](sm.ListenerEventCount),
	"channel":   eventNames[sm.ChannelEvent](sm.ChannelEventCount),
}

// eventNames names each of a machine's n events with each of its outcomes,
// which outcomesOf gives (nil for an event that carries none).
func eventNames[E interface {
	~uint8
	String() string
	Outcomes() int
	OutcomeString(uint8) string
}](n int) map[string]event {
	names := map[string]event{}
	for e := E(0); int(e) < n; e++ {
		if e.Outcomes() == 0 {
			names[e.String()] = event{uint8(e), 0}
		}
		for o := range e.Outcomes() {
			names[e.String()+"("+e.OutcomeString(uint8(o))+")"] = event{uint8(e), uint8(o)}
		}
	}
	return names
}
