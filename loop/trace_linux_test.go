package loop

import (
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// traceLog records the loop's steps.
type traceLog struct {
	mu    sync.Mutex
	steps []Step
}

func (l *traceLog) record(s Step) {
	l.mu.Lock()
	l.steps = append(l.steps, s)
	l.mu.Unlock()
}

// fireByName finds event and outcome by their String() and fires them.
func fireByName[E ~uint8, A interface {
	Len() int
	At(int) S
}, S interface{ String() string }](event, outcome string, count E, fire func(E, uint8) (A, error), outcomeName func(E, uint8) string) ([]string, bool, bool) {
	for e := E(0); e < count; e++ {
		for o := uint8(0); o < 16; o++ {
			name := outcomeName(e, o)
			if name == "" {
				break
			}
			if strings.TrimSuffix(name, "()") != event+outcome {
				continue
			}
			acts, err := fire(e, o)
			var names []string
			for i := 0; i < acts.Len(); i++ {
				names = append(names, acts.At(i).String())
			}
			return names, err != nil, true
		}
	}
	return nil, false, false
}

// TestRuntimeFollowsTheTables replays every transition the runtime recorded,
// machine by machine, on a fresh generated machine with the same options: each
// recorded step must be the table's answer, with the same target state and the
// same actions, in order. The runtime decides nothing the tables did not.
func TestRuntimeFollowsTheTables(t *testing.T) {
	checkFDs(t)
	log := &traceLog{}
	g := NewGroup(2, &Options{Trace: log.record})
	ln := serveEcho(t, g, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	for i := 0; i < 4; i++ {
		if err := echoClient(ln.Addr(), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	shutdown(t, g)

	type key struct {
		machine string
		id      uint64
	}
	byMachine := map[key][]Step{}
	log.mu.Lock()
	steps := slices.Clone(log.steps)
	log.mu.Unlock()
	for _, s := range steps {
		k := key{s.Machine, s.ID}
		byMachine[k] = append(byMachine[k], s)
	}
	counts := map[string]int{}
	for k, seq := range byMachine {
		var fire func(ev, out string) ([]string, string, bool, bool)
		switch k.machine {
		case "channel":
			m, _ := sm.NewChannel(sm.DefaultChannelOptions())
			fire = func(ev, out string) ([]string, string, bool, bool) {
				a, rej, ok := fireByName(ev, out, sm.ChannelEvent(sm.ChannelEventCount), m.Fire, channelOutcomeName)
				return a, m.State().String(), rej, ok
			}
		case "listener":
			m, _ := sm.NewListener(sm.DefaultListenerOptions())
			fire = func(ev, out string) ([]string, string, bool, bool) {
				a, rej, ok := fireByName(ev, out, sm.ListenerEvent(sm.ListenerEventCount), m.Fire, listenerOutcomeName)
				return a, m.State().String(), rej, ok
			}
		case "eventloop":
			m, _ := sm.NewEventloop(sm.DefaultEventloopOptions())
			fire = func(ev, out string) ([]string, string, bool, bool) {
				a, rej, ok := fireByName(ev, out, sm.EventloopEvent(sm.EventloopEventCount), m.Fire, eventloopOutcomeName)
				return a, m.State().String(), rej, ok
			}
		}
		for i, s := range seq {
			ev, out, _ := strings.Cut(s.Event, "(")
			if out != "" {
				out = "(" + out
			}
			acts, to, rejected, ok := fire(ev, out)
			if !ok {
				t.Fatalf("%s %d step %d: unknown event %q", k.machine, k.id, i, s.Event)
			}
			if rejected != s.Rejected || to != s.To || !slices.Equal(acts, s.Actions) {
				t.Fatalf("%s %d step %d %s: the runtime recorded %s -> %s %v (rejected %v); the table answers -> %s %v (rejected %v)",
					k.machine, k.id, i, s.Event, s.From, s.To, s.Actions, s.Rejected, to, acts, rejected)
			}
			counts[k.machine]++
		}
	}
	if counts["channel"] < 20 || counts["listener"] < 4 || counts["eventloop"] < 4 {
		t.Fatalf("too few steps recorded to mean anything: %v", counts)
	}
	t.Logf("replayed %v steps", counts)
}

func channelOutcomeName(e sm.ChannelEvent, o uint8) string {
	return eventName(e.String(), channelOutcomeType(e), o)
}

func listenerOutcomeName(e sm.ListenerEvent, o uint8) string {
	switch e {
	case sm.ListenerEventRegistered, sm.ListenerEventPollerControlFailed, sm.ListenerEventDeregistered:
		return eventName(e.String(), pollerControlNames, o)
	case sm.ListenerEventAccepted:
		return eventName(e.String(), enumNames(sm.AcceptResultCount, func(i uint8) string { return sm.AcceptResult(i).String() }), o)
	case sm.ListenerEventAdopted:
		return eventName(e.String(), enumNames(sm.AdoptResultCount, func(i uint8) string { return sm.AdoptResult(i).String() }), o)
	case sm.ListenerEventCloseReturned, sm.ListenerEventConnectionReleased:
		return eventName(e.String(), enumNames(sm.CloseResultCount, func(i uint8) string { return sm.CloseResult(i).String() }), o)
	}
	return eventName(e.String(), nil, o)
}

func eventloopOutcomeName(e sm.EventloopEvent, o uint8) string {
	switch e {
	case sm.EventloopEventStarted:
		return eventName(e.String(), pollerControlNames, o)
	case sm.EventloopEventWakeup:
		return eventName(e.String(), enumNames(sm.PollerWaitResultCount, func(i uint8) string { return sm.PollerWaitResult(i).String() }), o)
	}
	return eventName(e.String(), nil, o)
}

var pollerControlNames = enumNames(sm.PollerControlResultCount, func(i uint8) string { return sm.PollerControlResult(i).String() })

func channelOutcomeType(e sm.ChannelEvent) []string {
	switch e {
	case sm.ChannelEventRegistered, sm.ChannelEventPollerControlFailed, sm.ChannelEventDeregistered:
		return pollerControlNames
	case sm.ChannelEventReleased:
		return enumNames(sm.CloseResultCount, func(i uint8) string { return sm.CloseResult(i).String() })
	case sm.ChannelEventConnectCalled, sm.ChannelEventConnectChecked:
		return enumNames(sm.ConnectResultCount, func(i uint8) string { return sm.ConnectResult(i).String() })
	case sm.ChannelEventRead:
		return enumNames(sm.ReadResultCount, func(i uint8) string { return sm.ReadResult(i).String() })
	case sm.ChannelEventWrote:
		return enumNames(sm.WriteResultCount, func(i uint8) string { return sm.WriteResult(i).String() })
	case sm.ChannelEventWriteQueued:
		return enumNames(sm.QueueLevelCount, func(i uint8) string { return sm.QueueLevel(i).String() })
	}
	return nil
}

func enumNames(n int, name func(uint8) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = name(uint8(i))
	}
	return out
}

// eventName renders event e with outcome o as the trace does, or "" when o is
// not an outcome of e.
func eventName(event string, outcomes []string, o uint8) string {
	if outcomes == nil {
		if o == 0 {
			return event + "()"
		}
		return ""
	}
	if int(o) >= len(outcomes) {
		return ""
	}
	return event + "(" + outcomes[o] + ")"
}
