package loop

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
	"sync"

	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// The recording: with Options.Record set, each loop keeps its machines' last
// transitions in a ring of fixed-size records, written on the loop goroutine
// without allocating: the generated machines' enum values and action lists as
// Fire returns them, never a string. Names are made only when a recording is
// written out (Recording.WriteTo, DumpOn), in the format docs/recording.md
// describes and fsmgen replay reads.

// RecordingVersion is the format version that Recording.WriteTo writes: its
// first line is "fsmkernel-recording v1".
const RecordingVersion = 1

// recordingHeader is the first line of every recording.
const recordingHeader = "fsmkernel-recording v1"

// machineKind says which machine a record is of.
type machineKind uint8

const (
	kindEventloop machineKind = iota
	kindChannel
	kindListener
)

// The flags of a record, in its tag above its kind.
const (
	flagRejected   = 1 << (iota + 4) // the table rejected the event
	flagRegistrant                   // sub, subKind and opts name the channel or listener registering
)

// record is one transition. Only the action list of the record's kind is
// written; the other two hold whatever an earlier record left there. It holds
// no pointer, so the ring is never scanned by the collector.
type record struct {
	id uint64 // the channel's or listener's id; the loop's index in its group
	// sub, subKind and opts are, for the loop's step that hears a channel or
	// listener register (flagRegistrant), the registrant's id, kind and
	// options: a byte each, in the order of its table. The registration begins
	// an instance on the loop, so a recording that holds it holds the whole
	// instance, and its options.
	sub      uint64
	opts     uint64
	ch       sm.ChannelActions
	ln       sm.ListenerActions
	el       sm.EventloopActions
	from, to uint8 // states
	ev, out  uint8 // the event and its outcome (0 for an event that carries none)
	tag      uint8 // the machineKind in the low 4 bits, the flags above
	subKind  machineKind
}

func (x *record) kind() machineKind { return machineKind(x.tag & 15) }

// stepRing is a loop's recording: the last len(recs) transitions of the
// machines it drives, a power of two. Only the loop goroutine writes it;
// Recording copies it there, and DumpOn's writes happen there.
type stepRing struct {
	recs []record
	n    uint64 // transitions recorded since the loop started: the last one's sequence number
	// more is the least channel state a step into which channelMore must
	// see: the terminal states, when DumpOn is set (it hears of the channels
	// that end with an error); none otherwise.
	more   sm.ChannelState
	dumpOn func(*Channel, error) io.Writer
}

// newStepRing returns the ring of Options.Record, its capacity rounded up to a
// power of two, or nil when it is 0.
func newStepRing(o Options) *stepRing {
	if o.Record <= 0 {
		return nil
	}
	n := 1
	for n < o.Record {
		n <<= 1
	}
	r := &stepRing{recs: make([]record, n), more: 255, dumpOn: o.DumpOn}
	for s := sm.ChannelState(0); s < sm.ChannelStateCount && o.DumpOn != nil; s++ {
		if s.Terminal() {
			r.more = min(r.more, s)
		}
	}
	return r
}

// next returns the record the next transition goes into: len(recs) is a
// power of two, and the sequence number modulo it is the index.
func (r *stepRing) next() *record {
	x := &r.recs[r.n&uint64(len(r.recs)-1)]
	r.n++
	return x
}

// last returns the record written last.
func (r *stepRing) last() *record { return &r.recs[(r.n-1)&uint64(len(r.recs)-1)] }

// eventloop records a transition of the loop's own machine. For a
// registration, it records the registrant and its options too: the
// registrant's machine has not moved since it was made (on the goroutine that
// submitted the registration, which the inbox's lock orders before this).
func (r *stepRing) eventloop(l *Loop, from sm.EventloopState, e loopEvent, acts sm.EventloopActions, err error) {
	x := r.next()
	x.id, x.tag = uint64(l.id), uint8(kindEventloop)
	x.from, x.to, x.ev, x.out = uint8(from), uint8(l.m.State()), uint8(e.ev), e.out
	if err != nil {
		x.tag |= flagRejected
	}
	x.el = acts
	if reg := e.req.reg; e.ev == sm.EventloopEventRegisterChannel && reg != nil {
		x.tag |= flagRegistrant
		if reg.ch != nil {
			x.subKind, x.sub, x.opts = kindChannel, reg.ch.id, channelOptions(reg.ch.m.Vars())
		} else {
			x.subKind, x.sub, x.opts = kindListener, reg.ln.id, listenerOptions(reg.ln.m.Vars())
		}
	}
}

// channel records a transition of a channel's machine: the part every step
// takes, small enough to be inlined into the channel's step. It reports
// whether channelMore must finish the record: a rejection, or an end that
// DumpOn may be told of.
//
// Step calls it only for a channel the loop admitted (c.reg.gen is not 0):
// one whose registration was refused is not recorded, as its steps may run on
// the goroutine that called Register or Dial. The check is step's: here, it
// made the step's code longer, recording off or on.
func (r *stepRing) channel(c *Channel, from, to sm.ChannelState, e chEvent, acts sm.ChannelActions, err error) bool {
	x := &r.recs[r.n&uint64(len(r.recs)-1)] // slot, written out: an inlined call costs a NOP here
	r.n++
	x.id, x.tag = c.id, uint8(kindChannel)
	x.from, x.to, x.ev, x.out = uint8(from), uint8(to), uint8(e.ev), e.out
	x.ch = acts
	return err != nil || to >= r.more
}

// channelMore finishes the record channel wrote.
func (r *stepRing) channelMore(c *Channel, from sm.ChannelState, e chEvent, err error) {
	x := r.last()
	if err != nil {
		x.tag |= flagRejected
	}
	if to := c.m.State(); r.dumpOn != nil && to.Terminal() && !from.Terminal() {
		cause := c.cause
		if e.cause != nil {
			cause = e.cause // step makes it the channel's cause next
		}
		if cause != nil {
			r.dump(c, cause)
		}
	}
}

// listener records a transition of a listener's machine; as for channels, a
// listener the loop never admitted is not recorded.
func (r *stepRing) listener(x *Listener, from sm.ListenerState, e lnEvent, acts sm.ListenerActions, err error) {
	if x.reg.gen == 0 {
		return
	}
	y := r.next()
	y.id, y.tag = x.id, uint8(kindListener)
	y.from, y.to, y.ev, y.out = uint8(from), uint8(x.m.State()), uint8(e.ev), e.out
	if err != nil {
		y.tag |= flagRejected
	}
	y.ln = acts
}

// channelOptions and listenerOptions pack a machine's options, a byte each
// in the order its table declares them (record_test.go checks them against
// spec/); machineDesc.options unpacks them.
func channelOptions(v sm.ChannelVars) uint64 {
	return uint64(v.Origin) | b2u(v.AutoRead)<<8 | b2u(v.HalfClosure)<<16 | b2u(v.Backpressure)<<24 |
		uint64(v.EbadfPolicy)<<32 | uint64(v.PanicPolicy)<<40
}

func listenerOptions(v sm.ListenerVars) uint64 {
	return uint64(v.EbadfPolicy) | uint64(v.PanicPolicy)<<8
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// dump asks DumpOn about the channel that failed with cause and writes the
// loop's recording where it says. A panic in DumpOn or in the writer is
// contained and counted: the recording is the user's diagnostic, not the
// loop's.
func (r *stepRing) dump(c *Channel, cause error) {
	defer func() {
		if p := recover(); p != nil {
			c.loop.counters.PanicsContained.Add(1)
		}
	}()
	w := r.dumpOn(c, cause)
	if w == nil {
		return
	}
	rec := Recording{loops: []loopSteps{r.view(c.loop.id)}}
	_, _ = rec.WriteTo(w)
}

// view returns the ring's records, oldest first, without copying them: valid
// on the loop goroutine until the next transition.
func (r *stepRing) view(id int) loopSteps {
	ls := loopSteps{id: id, capacity: len(r.recs), total: r.n}
	if r.n <= uint64(len(r.recs)) {
		ls.spans[0] = r.recs[:r.n]
	} else {
		next := r.n & uint64(len(r.recs)-1)
		ls.spans[0], ls.spans[1] = r.recs[next:], r.recs[:next]
	}
	return ls
}

// snapshot returns a copy of the ring's records, oldest first.
func (r *stepRing) snapshot(id int) loopSteps {
	v := r.view(id)
	recs := make([]record, 0, len(v.spans[0])+len(v.spans[1]))
	recs = append(append(recs, v.spans[0]...), v.spans[1]...)
	v.spans = [2][]record{recs}
	return v
}

// Recording is the recorded transitions of a loop or of a group's loops, as
// they stood when Loop.Recording or Group.Recording was called. WriteTo writes
// it in the format fsmgen replay reads.
type Recording struct {
	loops []loopSteps
}

// loopSteps is one loop's part of a recording.
type loopSteps struct {
	id       int
	capacity int
	total    uint64      // transitions the loop recorded: the last one's sequence number
	spans    [2][]record // the records kept, oldest first, in one or two runs
}

func (ls *loopSteps) kept() int { return len(ls.spans[0]) + len(ls.spans[1]) }

// Recording returns a copy of the transitions the loop recorded (the last
// Options.Record of them), with none if it records none. It waits for the loop
// to make the copy, on its goroutine, or for the loop to stop; it must not be
// called on the loop's goroutine (from a handler or a task), where DumpOn
// writes the recording instead.
func (l *Loop) Recording() *Recording {
	return &Recording{loops: []loopSteps{l.recording()}}
}

// Recording returns a copy of the transitions each of the group's loops
// recorded, loop by loop, as Loop.Recording does.
func (g *Group) Recording() *Recording {
	r := &Recording{}
	for _, l := range g.loops {
		r.loops = append(r.loops, l.recording())
	}
	return r
}

func (l *Loop) recording() loopSteps {
	ring := l.ring
	if ring == nil {
		return loopSteps{id: l.id}
	}
	select {
	case <-l.done:
		return ring.snapshot(l.id) // nothing records any more
	default:
	}
	var ls loopSteps
	copied := make(chan struct{})
	refused := make(chan struct{})
	err := l.submit(request{kind: reqTask, task: task{
		run:  func() { ls = ring.snapshot(l.id); close(copied) },
		fail: func(error) { close(refused) },
	}})
	if err == nil {
		select {
		case <-copied:
			return ls
		case <-refused:
		case <-l.done:
		}
	}
	// The loop is stopping and will not run the task: once it has stopped,
	// its ring is still.
	<-l.done
	return ring.snapshot(l.id)
}

// Steps returns the number of transitions the recording holds.
func (r *Recording) Steps() int {
	n := 0
	for i := range r.loops {
		n += r.loops[i].kept()
	}
	return n
}

// WriteTo writes the recording in format v1 (docs/recording.md): the header
// line "fsmkernel-recording v1", one line per machine naming its states',
// events' and actions' fingerprint, then per loop a line saying which
// sequence numbers it holds and whether its ring wrapped, the instance lines
// that give each machine's options before its first step, and one line per
// step; then "end".
func (r *Recording) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	b := bufio.NewWriter(cw)
	b.WriteString(recordingHeader + "\n")
	for _, d := range machineDescs() {
		fmt.Fprintf(b, "machine %s states %d events %d actions %d fingerprint %s\n", d.name, d.states, d.events, d.actions, d.fingerprint)
	}
	var line []byte
	for i := range r.loops {
		line = r.loops[i].write(b, line)
	}
	b.WriteString("end\n")
	err := b.Flush()
	return cw.n, err
}

// write writes one loop's part; line is scratch space, returned for reuse.
func (ls *loopSteps) write(b *bufio.Writer, line []byte) []byte {
	kept := uint64(ls.kept())
	first := ls.total - kept + 1
	fmt.Fprintf(b, "loop %d capacity %d first %d last %d", ls.id, ls.capacity, first, ls.total)
	if first > 1 {
		b.WriteString(" wrapped")
	}
	b.WriteByte('\n')
	type key struct {
		kind machineKind
		id   uint64
	}
	seen := map[key]bool{}
	registered := map[key]uint64{} // the options of the registrations recorded
	seq := first
	descs := machineDescs()
	for _, span := range ls.spans {
		for i := range span {
			x := &span[i]
			d := &descs[x.kind()]
			if x.tag&flagRegistrant != 0 {
				registered[key{x.subKind, x.sub}] = x.opts
			}
			if k := (key{x.kind(), x.id}); !seen[k] {
				// The instance's line, before its first step: new, with its
				// options, when the recording holds its beginning (the loop's
				// start; a channel's or listener's registration), else old.
				seen[k] = true
				opts, isNew := registered[k]
				if x.kind() == kindEventloop {
					isNew = x.from == d.initial
				}
				if isNew {
					line = append(line[:0], "new "...)
				} else {
					line = append(line[:0], "old "...)
				}
				line = append(line, d.name...)
				line = append(line, ' ')
				line = strconv.AppendUint(line, x.id, 10)
				if isNew {
					line = d.options(opts, line)
				}
				line = append(line, '\n')
				b.Write(line)
			}
			line = strconv.AppendUint(line[:0], seq, 10)
			line = append(line, ' ')
			line = append(line, d.name...)
			line = append(line, ' ')
			line = strconv.AppendUint(line, x.id, 10)
			line = append(line, ' ')
			line = append(line, d.state(x.from)...)
			line = append(line, ' ')
			line = append(line, d.event(x.ev)...)
			if o := d.outcome(x.ev, x.out); o != "" {
				line = append(line, '(')
				line = append(line, o...)
				line = append(line, ')')
			}
			if x.tag&flagRejected != 0 {
				line = append(line, " rejected"...)
			} else {
				line = append(line, " -> "...)
				line = append(line, d.state(x.to)...)
				line = append(line, " ["...)
				line = d.appendActions(x, line)
				line = append(line, ']')
			}
			line = append(line, '\n')
			b.Write(line)
			seq++
		}
	}
	return line
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// machineDesc names what a machine's records hold, from the generated enums.
type machineDesc struct {
	name                    string
	states, events, actions int
	initial                 uint8 // the initial state
	fingerprint             string
	state                   func(uint8) string
	event                   func(uint8) string
	outcome                 func(ev, out uint8) string // "" for an event without outcomes
	appendActions           func(x *record, line []byte) []byte
	options                 func(opts uint64, line []byte) []byte // " name=value" per option
}

// machineDescs is indexed by machineKind.
var machineDescs = sync.OnceValue(func() []machineDesc {
	return []machineDesc{
		kindEventloop: {
			name: "eventloop", states: sm.EventloopStateCount, events: sm.EventloopEventCount, actions: sm.EventloopActionCount,
			initial:       uint8(sm.EventloopStateCreated),
			state:         func(s uint8) string { return sm.EventloopState(s).String() },
			event:         func(e uint8) string { return sm.EventloopEvent(e).String() },
			outcome:       func(e, o uint8) string { return sm.EventloopEvent(e).OutcomeString(o) },
			appendActions: func(x *record, line []byte) []byte { return appendActions(line, x.el.Len(), x.el.At) },
			options:       func(_ uint64, line []byte) []byte { return line },
			fingerprint: fingerprint(names[sm.EventloopState](sm.EventloopStateCount), names[sm.EventloopEvent](sm.EventloopEventCount),
				names[sm.EventloopAction](sm.EventloopActionCount)),
		},
		kindChannel: {
			name: "channel", states: sm.ChannelStateCount, events: sm.ChannelEventCount, actions: sm.ChannelActionCount,
			initial:       uint8(sm.ChannelStateFresh),
			state:         func(s uint8) string { return sm.ChannelState(s).String() },
			event:         func(e uint8) string { return sm.ChannelEvent(e).String() },
			outcome:       func(e, o uint8) string { return sm.ChannelEvent(e).OutcomeString(o) },
			appendActions: func(x *record, line []byte) []byte { return appendActions(line, x.ch.Len(), x.ch.At) },
			options: func(o uint64, line []byte) []byte {
				line = appendOption(line, "origin", sm.ChannelOrigin(o).String())
				line = appendOption(line, "autoRead", strconv.FormatBool(uint8(o>>8) != 0))
				line = appendOption(line, "halfClosure", strconv.FormatBool(uint8(o>>16) != 0))
				line = appendOption(line, "backpressure", strconv.FormatBool(uint8(o>>24) != 0))
				line = appendOption(line, "ebadfPolicy", sm.ChannelEbadfPolicy(o>>32).String())
				return appendOption(line, "panicPolicy", sm.ChannelPanicPolicy(o>>40).String())
			},
			fingerprint: fingerprint(names[sm.ChannelState](sm.ChannelStateCount), names[sm.ChannelEvent](sm.ChannelEventCount),
				names[sm.ChannelAction](sm.ChannelActionCount)),
		},
		kindListener: {
			name: "listener", states: sm.ListenerStateCount, events: sm.ListenerEventCount, actions: sm.ListenerActionCount,
			initial:       uint8(sm.ListenerStateFresh),
			state:         func(s uint8) string { return sm.ListenerState(s).String() },
			event:         func(e uint8) string { return sm.ListenerEvent(e).String() },
			outcome:       func(e, o uint8) string { return sm.ListenerEvent(e).OutcomeString(o) },
			appendActions: func(x *record, line []byte) []byte { return appendActions(line, x.ln.Len(), x.ln.At) },
			options: func(o uint64, line []byte) []byte {
				line = appendOption(line, "ebadfPolicy", sm.ListenerEbadfPolicy(o).String())
				return appendOption(line, "panicPolicy", sm.ListenerPanicPolicy(o>>8).String())
			},
			fingerprint: fingerprint(names[sm.ListenerState](sm.ListenerStateCount), names[sm.ListenerEvent](sm.ListenerEventCount),
				names[sm.ListenerAction](sm.ListenerActionCount)),
		},
	}
})

func appendActions[A fmt.Stringer](line []byte, n int, at func(int) A) []byte {
	for i := range n {
		if i > 0 {
			line = append(line, ' ')
		}
		line = append(line, at(i).String()...)
	}
	return line
}

func appendOption(line []byte, name, value string) []byte {
	line = append(line, ' ')
	line = append(line, name...)
	line = append(line, '=')
	return append(line, value...)
}

// names returns the names of an enum's n values.
func names[E interface {
	~uint8
	String() string
}](n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = E(i).String()
	}
	return out
}

// fingerprint is the fingerprint a recording's machine line gives: FNV-1a (64
// bits, in hex) of the machine's state, event and action names in their
// order, which is the numbering its records use. It does not cover the rows.
// fsmgen replay computes it the same way from the tables it is given.
func fingerprint(states, events, actions []string) string {
	h := fnv.New64a()
	for _, part := range [][]string{states, events, actions} {
		h.Write([]byte(strings.Join(part, ",")))
		h.Write([]byte{';'})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// The names of the outcomes the events carry, by the outcome enumeration each
// event declares (record_test.go checks them against spec/).
