//go:build linux || darwin || freebsd

package looptest_test

import (
	"flag"
	"slices"
	"testing"

	"github.com/fsmkernel/fsmkernel/loop"
)

// The swarm's pauses: Channel.PauseReading and ResumeReading, called by the
// handler on the loop (in OnActive, and in an OnRead until that read's echo
// is done) and by the driver off it (Opts.Pauses), and the paused contract
// that judges them.
//
// A pause's window is the swarm's own account, not the table's: a task the
// swarm submits right after PauseReading (Loop.Execute, which runs tasks in
// the order they were submitted) marks the channel paused once the pause's
// task has run, and one submitted right before ResumeReading unmarks it
// before the resume's task runs. So the window is within the one in which
// the runtime was told to pause, whatever the runtime did with it, and a
// pause the runtime dropped shows as reads inside it.

// simStrictPause makes the paused contract fail a paused channel's read in a
// cycle a hangup started, too (see checkPausedRead).
var simStrictPause = flag.Bool("sim.strictpause", false, "the paused contract: also fail a paused channel's OnRead in a read cycle that a hangup started")

const (
	maxHandlerPauses = 8  // a channel's handler pauses it at most this often
	maxDriverPauses  = 12 // the driver's calls per schedule, at most
)

// pauseOp is one of the driver's calls: PauseReading, or ResumeReading when
// Resume, on the A-th live channel, after the schedule's op At (after the
// last one when At is past it).
type pauseOp struct {
	At, A  int
	Resume bool
}

// pauseRec is the oracle's record of one channel's pauses.
type pauseRec struct {
	wanted  bool // the last call made was PauseReading: resumed when the faults stop
	paused  bool // a PauseReading's task ran, and no ResumeReading was made since
	ever    bool // paused at some point
	handler int  // the pauses its handler made
	// inCycle: the channel's last step (Trace) went to reading: a read
	// cycle is under way. cycleAtPause: one was when the pause was
	// marked, and has not ended; it may still deliver (the table ends it
	// at its next continuation).
	inCycle, cycleAtPause bool
	// hangupCycle: the cycle under way was started, while paused, by a
	// hangup, which the table's row reads whatever the interest; hangupReads
	// are the OnReads it delivered.
	hangupCycle bool
	hangupReads int
	read        int // the bytes OnRead delivered
}

// handlerPauses draws whether the handler pauses its channel now: never
// once the faults stopped, and at most maxHandlerPauses times a channel.
func (w *world) handlerPauses(r *chanRec) bool {
	if w.quiet || w.o.Pause == 0 || r.pause.handler >= maxHandlerPauses || w.prng.IntN(10000) >= w.o.Pause {
		return false
	}
	r.pause.handler++
	return true
}

// pauseReading pauses r's channel, and marks it paused once the loop has
// run the pause's task.
func (w *world) pauseReading(r *chanRec) {
	c := r.c
	r.pause.wanted = true
	c.PauseReading()
	c.Loop().Execute(func() {
		w.reached.pauses++
		if !r.pause.paused {
			r.pause.paused, r.pause.ever = true, true
			r.pause.cycleAtPause = r.pause.inCycle || r.reads > 0
		}
	})
}

// resumeReading unmarks r's channel, and then resumes it.
func (w *world) resumeReading(r *chanRec) {
	c := r.c
	r.pause.wanted = false
	c.Loop().Execute(func() { r.pause.paused, r.pause.cycleAtPause = false, false })
	c.ResumeReading()
}

// driverPauses makes the driver's calls drawn to follow op i.
func (w *world) driverPauses(i int) {
	last := i == len(w.sc.Ops)-1
	for _, p := range w.sc.Opts.Pauses {
		if p.At != i && !(last && p.At > i) {
			continue
		}
		r := w.channel(p.A)
		if r == nil {
			continue
		}
		if p.Resume {
			w.resumeReading(r)
		} else {
			w.pauseReading(r)
		}
	}
}

// resumeAll resumes, once the faults stopped, every channel whose last call
// was a pause, so that every pause ends before the calm checks (or with its
// channel's close).
func (w *world) resumeAll() {
	for _, r := range w.chans {
		if r.c != nil && r.pause.wanted {
			w.resumeReading(r)
		}
	}
}

// tracePause follows each channel's steps: whether a read cycle is under
// way, and what its pauses and resumes did to its read interest.
func (w *world) tracePause(st loop.Step) {
	if st.Machine != "channel" {
		return
	}
	r := w.byID[st.ID]
	if r == nil {
		return
	}
	// A step from reading is its cycle's (its actions deliver the cycle's
	// reads, the last one's included); any other begins anew.
	if st.From != "reading" {
		r.pause.cycleAtPause = false
		r.pause.hangupCycle = st.Event == "hangup" && st.To == "reading" && r.pause.paused
		r.pause.hangupReads = 0
	}
	r.pause.inCycle = st.To == "reading"
	switch {
	case st.Event == "pauseRead" && slices.Contains(st.Actions, "disarmRead"):
		w.reached.disarmed++
	case st.Event == "resumeRead" && slices.Contains(st.Actions, "armRead"):
		w.reached.rearmed++
	}
}

// checkPausedRead, in OnRead: a paused channel delivers nothing but what the
// read cycle under way when the pause was heard still reads (the paused
// contract).
func (w *world) checkPausedRead(r *chanRec, n int) {
	r.pause.read += n
	if !r.pause.paused || r.pause.cycleAtPause {
		return
	}
	if r.pause.hangupCycle && !*simStrictPause {
		// The table's hangup row reads whatever the interest (a Unix
		// socket whose peer closed is hung up with its bytes still
		// there, and each wakeup reports it again), and reading paused,
		// the cycle ends at its first continuation: one OnRead a cycle.
		if r.pause.hangupReads++; r.pause.hangupReads > 1 {
			w.s.Violate("paused", "channel %d: a read cycle that a hangup started while its reading is paused delivered %d OnReads: it ends at its first continuation", r.c.ID(), r.pause.hangupReads)
		}
		return
	}
	w.s.Violate("paused", "channel %d: OnRead of %d bytes while its reading is paused (its PauseReading's task ran, no ResumeReading was made since), outside the read cycle under way at the pause", r.c.ID(), n)
	r.pause.cycleAtPause = true // reported once per cycle
}

// checkResumed, in the calm once every pause was resumed and what was in
// flight drained: a channel that was paused, and that nothing happened to,
// read every byte its peer wrote (the paused contract).
func (w *world) checkResumed(alive []*chanRec) {
	for _, r := range alive {
		if !r.pause.ever || r.inactive {
			continue
		}
		w.reached.calmed++
		if wrote := w.wrote[r.peer]; r.pause.read != wrote {
			w.s.Violate("paused", "channel %d: resumed, it read %d of the %d bytes its peer wrote, with the faults stopped and its peer reading (its error: %v)", r.c.ID(), r.pause.read, wrote, r.c.Err())
		}
	}
}

// TestSwarmReachesThePauses: over 200 consecutive seeds, pauses are heard
// with read interest armed and resumes re-arm it, and paused channels are
// checked in the calm, so that the paused contract is checked on real cases.
func TestSwarmReachesThePauses(t *testing.T) {
	sum := reachedOver(t, 200)
	t.Logf("pauses: %d heard, %d disarmed read interest, %d resumes re-armed it, %d paused channels checked in the calm", sum.pauses, sum.disarmed, sum.rearmed, sum.calmed)
	if sum.disarmed == 0 || sum.rearmed == 0 || sum.calmed == 0 {
		t.Errorf("over 200 schedules the pauses reached were %+v: the paused contract was never checked", sum)
	}
}
