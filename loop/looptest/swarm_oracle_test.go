//go:build linux || darwin || freebsd

package looptest_test

import (
	"errors"
	"slices"
	"strings"

	"github.com/fsmkernel/fsmkernel/loop"
)

// More of the oracle: contracts each found missing when a fix of issue 12,
// reverted, went unnoticed by the search (tools/mutants).

// echoesWithWrite reports whether the handler of rec echoes with Write, not
// Send: Write from a callback must be ordered exactly like Send, before the
// read that finds the peer's EOF, and count against the watermarks at once.
// Every other channel of a schedule, in the order they were accepted or
// dialed, so that a schedule has both and no random draw moves.
func (w *world) echoesWithWrite(rec *chanRec) bool {
	return slices.Index(w.chans, rec)%2 == 1
}

// endedChannels closes, once more, every channel that has already ended (its
// peer, an error, a panic or the driver closed it), as a user may: not a
// caller bug, so no table may reject it (the rejected contract, at the end).
// And it checks, with the faults stopped, that a listener closed before the
// stop was not closed by a panic in Accepted, which fails that connection
// only.
func (w *world) endedChannels() {
	for _, r := range w.chans {
		if r.c == nil {
			continue
		}
		select {
		case <-r.c.Closed():
			r.c.Close()
		default:
		}
	}
	if w.ln == nil || w.loopFailed() {
		return // a failed loop closes its listener, with its cause
	}
	select {
	case <-w.ln.Closed():
		if err := w.ln.Err(); err != nil && strings.Contains(err.Error(), "planted panic in Accepted") {
			w.s.Violate("accept-again", "the listener closed before the stop, for a panic (%d in Accepted): %.200v", w.acceptPn, err)
		}
	default:
	}
}

// checkRejected: no channel or listener table rejects an event (the
// rejected contract). Counters.Rejected counts runtime and caller bugs only,
// and the swarm makes none, a Close after a channel's end included. A write
// a channel refuses is not one (it fails), nor is a registration a stopping
// loop refuses: an accept racing the Shutdown, which Counters.Rejected
// counts all the same.
func (w *world) checkRejected(st loop.Step) {
	if st.Rejected && st.Machine != "eventloop" && !strings.HasPrefix(st.Event, "writeQueued") {
		w.s.Violate("rejected", "%s %d rejected %s in %s: a runtime or caller bug", st.Machine, st.ID, st.Event, st.From)
	}
}

// endContracts checks, once the group stopped, that a Shutdown that forced a
// channel's close (its error, or a write's, wraps ErrForced) did not return
// nil (the shutdown contract).
func (w *world) endContracts() {
	if !w.stopped || w.stopErr != nil || w.sc.End == endClose {
		return
	}
	for _, r := range w.chans {
		if r.c == nil {
			continue
		}
		forced := errors.Is(r.c.Err(), loop.ErrForced)
		for _, wr := range r.writes {
			forced = forced || wr.done == 1 && errors.Is(wr.err, loop.ErrForced)
		}
		if forced {
			w.s.Violate("shutdown", "Shutdown returned nil, yet it forced the close of channel %d (its error: %v)", r.c.ID(), r.c.Err())
			return
		}
	}
}
