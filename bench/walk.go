package bench

import (
	"fmt"
	"strings"

	"github.com/fsmkernel/fsmkernel/gen"
)

// Step is one event of a walk: the IR's event and outcome numbers, which are also
// the values of the generated Event and outcome constants.
type Step struct {
	Event, Outcome int
	// Reset is set on the step that ends in a terminal state: the driver starts a
	// new machine (or puts the machine back in its initial state) before the next
	// step, as a runtime would for its next connection.
	Reset bool
}

// Lifetimes is the benchmark's walk through the lifecycle machine: the lives of
// many connections, one per string, each from connect to close. Most events are
// what a busy connection sees most, reads and writes while active; the rest visit
// every way a connection ends and the stale events that race with a close. The
// walk touches every cell of the table that does not reject or belong to the
// terminal state (TestWalkCoverage).
var Lifetimes = []string{
	// A client: request, response, graceful close.
	"connectDone/ok write writable/flushed readable/data readable/data readable/wouldBlock " +
		"write writable/partial writable/flushed readable/data readable/wouldBlock " +
		"close writable/flushed deregistered",
	// A server whose peer half-closes and still reads the reply.
	"connectDone/ok readable/data readable/wouldBlock readable/data readable/eof readable/eof readable/data " +
		"write writable/wouldBlock writable/partial writable/flushed readable/wouldBlock " +
		"write writable/failed deregistered",
	// The same, ending with a graceful close and then shutting down the output.
	"connectDone/ok readable/data readable/eof write close writable/partial writable/flushed " +
		"hangup deregistered",
	"connectDone/ok readable/data readable/wouldBlock readable/eof write writable/flushed " +
		"shutdownOutput readable/data deregistered",
	// An HTTP/1.0-style client: send, shut down the output, read to EOF.
	"connectDone/ok write writable/flushed shutdownOutput writable/wouldBlock writable/partial writable/flushed write " +
		"shutdownOutput readable/data readable/data readable/wouldBlock readable/data readable/eof " +
		"write readable/data deregistered",
	// Half-closed connections that end early.
	"connectDone/ok shutdownOutput readable/data readable/failed deregistered",
	"connectDone/ok shutdownOutput writable/failed readable/wouldBlock close deregistered",
	"connectDone/ok readable/eof abort shutdownOutput close deregistered",
	"connectDone/ok readable/eof readable/failed deadline deregistered",
	// Connects that fail, time out, or are abandoned.
	"write connectDone/refused hangup writable/partial deregistered",
	"write deadline connectDone/ok abort deadline deregistered",
	"hangup connectDone/refused readable/wouldBlock deregistered",
	"write close deregistered",
	"abort loopFailed",
	"loopFailed",
	// Connections reset, timed out or aborted while active.
	"connectDone/ok readable/data readable/failed writable/failed readable/failed readable/eof deregistered",
	"connectDone/ok write writable/partial writable/failed deregistered",
	"connectDone/ok readable/data readable/wouldBlock deadline deregistered",
	"connectDone/ok write writable/wouldBlock abort writable/wouldBlock writable/flushed close shutdownOutput deregistered",
	"connectDone/ok readable/data hangup deregistered",
	"connectDone/ok readable/data readable/wouldBlock loopFailed",
	"connectDone/ok shutdownOutput hangup deregistered",
	"connectDone/ok shutdownOutput deadline deregistered",
	"connectDone/ok shutdownOutput abort deregistered",
	"connectDone/ok shutdownOutput loopFailed",
	"connectDone/ok readable/eof hangup deregistered",
	"connectDone/ok readable/eof loopFailed",
	// Draining: the flush completes, fails, or the deadline expires first.
	"connectDone/ok write close write readable/data writable/partial writable/wouldBlock " +
		"close shutdownOutput readable/eof deadline deregistered",
	"connectDone/ok write close readable/wouldBlock writable/failed deregistered",
	"connectDone/ok write close readable/failed hangup deregistered",
	"connectDone/ok write close abort deregistered",
	"connectDone/ok write close loopFailed",
	"connectDone/ok write close writable/flushed loopFailed",
}

// ParseWalk turns lifetimes, each a space-separated list of looplab event names
// ("readable/data", "close"), into one walk. It checks each lifetime with the IR's
// interpreter: no event is rejected, and each lifetime ends, and only ends, in a
// terminal state.
func ParseWalk(pkg *gen.Package, m *gen.Machine, lifetimes []string) ([]Step, error) {
	byName := map[string]Step{}
	for e := range m.Events {
		for o := 0; o < m.NumOutcomes(pkg, e); o++ {
			byName[LooplabEventName(pkg, m, e, o)] = Step{Event: e, Outcome: o}
		}
	}
	var walk []Step
	for i, life := range lifetimes {
		state := m.Initial
		fields := strings.Fields(life)
		for j, name := range fields {
			st, ok := byName[name]
			if !ok {
				return nil, fmt.Errorf("lifetime %d: unknown event %q", i, name)
			}
			r := m.Match(state, st.Event, st.Outcome, nil)
			if r < 0 || m.Rows[r].Kind == gen.RowReject {
				return nil, fmt.Errorf("lifetime %d: state %q rejects event %q", i, m.States[state].Name, name)
			}
			state = m.Apply(r, state, nil, nil)
			last := j == len(fields)-1
			if m.States[state].Terminal != last {
				return nil, fmt.Errorf("lifetime %d: in state %q after event %d %q; want a terminal state after the last event only",
					i, m.States[state].Name, j, name)
			}
			st.Reset = last
			walk = append(walk, st)
		}
	}
	return walk, nil
}
