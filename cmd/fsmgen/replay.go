package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/fsmkernel/fsmkernel/gen"
)

// replay checks a recording that package loop wrote (Options.Record,
// Recording.WriteTo; the format is docs/recording.md) against tables: it
// replays every instance's steps on the tables' rows, with gen's interpreter,
// and names the first step the tables do not allow, or says the recording is
// a legal path.
func replay(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return usageErr("replay: give the recording, then the spec files")
	}
	path := fs.Arg(0)
	pkg, err := load(fs.Args()[1:])
	var ds gen.Diagnostics
	if err != nil && asJSON(fs) && errors.As(err, &ds) {
		return jsonDiagnostics{ds}
	}
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	res := replayRecording(pkg, path, data)
	if asJSON(fs) {
		// As writeJSON, but "->" stays as it is in the recording.
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else if res.Legal {
		if _, err := fmt.Fprintln(stdout, res.summary()); err != nil {
			return err
		}
		for _, n := range res.Notes {
			fmt.Fprintln(stdout, "note: "+n)
		}
	} else {
		for _, n := range res.Notes {
			fmt.Fprintln(stderr, "note: "+n)
		}
	}
	if !res.Legal {
		return errors.New(res.Illegal.Message)
	}
	return nil
}

// replayResult is what replay finds; replay -json prints it.
type replayResult struct {
	Legal     bool     `json:"legal"`
	Steps     int      `json:"steps"`     // steps replayed (all of them when legal)
	Instances int      `json:"instances"` // instances whose steps were replayed
	Machines  []string `json:"machines"`  // the machines of those instances
	// Notes say what the verdict rests on: a ring that wrapped, tables whose
	// names differ from the recording's.
	Notes   []string     `json:"notes,omitempty"`
	Illegal *illegalStep `json:"illegal,omitempty"`
}

func (r *replayResult) summary() string {
	return fmt.Sprintf("legal: %d steps of %d instances, machines %s", r.Steps, r.Instances, strings.Join(r.Machines, ", "))
}

// illegalStep is the first line of the recording that the tables, or the
// format, do not allow. For a step the tables answer otherwise, Step, Machine,
// ID, State, Event, Table and Recording are set; Message says it all in one
// line, prefixed with file:line.
type illegalStep struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Step      uint64 `json:"step,omitempty"` // the step's sequence number in its loop
	Loop      *int   `json:"loop,omitempty"` // the loop whose part the line is in
	Machine   string `json:"machine,omitempty"`
	ID        uint64 `json:"id,omitempty"`
	State     string `json:"state,omitempty"`
	Vars      string `json:"vars,omitempty"` // the variables before the step, when known
	Event     string `json:"event,omitempty"`
	Table     string `json:"table,omitempty"`     // what the tables answer
	Recording string `json:"recording,omitempty"` // what the recording says
	Message   string `json:"message"`
}

// recordingHeader is the first line of a recording of the format replay reads.
const recordingHeader = "fsmkernel-recording v1"

// replayer holds a replay under way.
type replayer struct {
	pkg      *gen.Package
	file     string
	machines map[string]*tableMachine
	insts    map[instKey]*instance
	used     map[string]bool // machines with a replayed step
	sec      *section
	secs     int
	line     int
	steps    int
	notes    []string
	ended    bool
}

// tableMachine is a machine of the tables with its names looked up.
type tableMachine struct {
	m       *gen.Machine
	states  map[string]int
	events  map[string][2]int // "read(data)" -> event, outcome
	actions map[string]int
	graph   *gen.Graph // the reachable configurations, explored when first needed
}

type instKey struct {
	sec     int
	machine string
	id      uint64
}

// instance is one machine's replay: the configurations it may be in, which
// agree on the state. A new instance (the recording holds its beginning)
// starts with one, the initial configuration with its options; an old one
// (the ring overwrote its beginning) with every reachable configuration of
// the state its first recorded step is from, whatever its options, and keeps
// those that answer each step as recorded.
type instance struct {
	tm      *tableMachine
	name    string // "channel 12"
	old     bool
	started bool
	confs   []config
	last    uint64 // the sequence number of its last step
	lastAt  int    // and its line
}

type config struct {
	state int
	vals  []int
}

// section is one loop's part of the recording.
type section struct {
	loop        int
	first, last uint64
	wrapped     bool
	next        uint64 // the sequence number the next step must have
	old         int    // old instances
	line        int
}

// errIllegal carries the first illegal line out of the replay.
type errIllegal struct{ s *illegalStep }

func (e errIllegal) Error() string { return e.s.Message }

func replayRecording(pkg *gen.Package, file string, data []byte) *replayResult {
	r := &replayer{pkg: pkg, file: file, machines: map[string]*tableMachine{}, insts: map[instKey]*instance{}, used: map[string]bool{}}
	for _, m := range pkg.Machines {
		r.machines[m.Name] = newTableMachine(pkg, m)
	}
	res := &replayResult{Machines: []string{}}
	err := r.run(data)
	res.Steps = r.steps
	for k := range r.insts {
		if r.insts[k].started {
			res.Instances++
		}
	}
	for name := range r.used {
		res.Machines = append(res.Machines, name)
	}
	sort.Strings(res.Machines)
	res.Notes = r.notes
	var ill errIllegal
	if errors.As(err, &ill) {
		res.Illegal = ill.s
		return res
	}
	res.Legal = true
	return res
}

func newTableMachine(pkg *gen.Package, m *gen.Machine) *tableMachine {
	tm := &tableMachine{m: m, states: map[string]int{}, events: map[string][2]int{}, actions: map[string]int{}}
	for i, s := range m.States {
		tm.states[s.Name] = i
	}
	for e := range m.Events {
		for o := 0; o < m.NumOutcomes(pkg, e); o++ {
			tm.events[pkg.FormatStep(m, e, o)] = [2]int{e, o}
		}
	}
	for i, a := range m.Actions {
		tm.actions[a.Name] = i
	}
	return tm
}

// fingerprint is the fingerprint a recording's machine line gives, as package
// loop computes it from the generated enums: FNV-1a (64 bits, in hex) of the
// machine's state, event and action names in order. It does not cover rows.
func (tm *tableMachine) fingerprint() string {
	var states, events, actions []string
	for _, s := range tm.m.States {
		states = append(states, s.Name)
	}
	for _, e := range tm.m.Events {
		events = append(events, e.Name)
	}
	for _, a := range tm.m.Actions {
		actions = append(actions, a.Name)
	}
	h := fnv.New64a()
	for _, part := range [][]string{states, events, actions} {
		h.Write([]byte(strings.Join(part, ",")))
		h.Write([]byte{';'})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// failf makes the error of a line the format does not allow.
func (r *replayer) failf(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	s := &illegalStep{File: r.file, Line: r.line, Message: fmt.Sprintf("%s:%d: %s", r.file, r.line, msg)}
	if r.sec != nil {
		s.Loop = &r.sec.loop
	}
	return errIllegal{s}
}

func (r *replayer) run(data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		r.line++
		line := strings.TrimSpace(sc.Text())
		if r.line == 1 {
			if err := r.header(line); err != nil {
				return err
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if r.ended {
			return r.failf("%q after the end line", line)
		}
		f := strings.Fields(line)
		var err error
		switch f[0] {
		case "machine":
			err = r.machineLine(f)
		case "loop":
			err = r.loopLine(f)
		case "new", "old":
			err = r.instanceLine(f)
		case "end":
			err = r.endSection()
			r.ended = true
		default:
			err = r.step(line, f)
		}
		if err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return r.failf("%v", err)
	}
	if r.line == 0 {
		return r.failf("empty: not a recording")
	}
	if !r.ended {
		r.line++
		return r.failf("the recording ends without its end line: it is cut short")
	}
	return nil
}

func (r *replayer) header(line string) error {
	if line == recordingHeader {
		return nil
	}
	if v, ok := strings.CutPrefix(line, "fsmkernel-recording "); ok {
		return r.failf("a recording of format %s: this fsmgen reads v1", v)
	}
	return r.failf("not an fsmkernel recording: the first line is %q, not %q", line, recordingHeader)
}

// machineLine: machine NAME states N events N actions N fingerprint HEX.
func (r *replayer) machineLine(f []string) error {
	if len(f) != 10 || f[2] != "states" || f[4] != "events" || f[6] != "actions" || f[8] != "fingerprint" {
		return r.failf("malformed machine line: want machine NAME states N events N actions N fingerprint HEX")
	}
	tm := r.machines[f[1]]
	if tm == nil {
		r.notes = append(r.notes, fmt.Sprintf("the recording's machine %s is not in the tables", f[1]))
		return nil
	}
	if fp := tm.fingerprint(); fp != f[9] {
		r.notes = append(r.notes, fmt.Sprintf("machine %s: the tables' states, events or actions are not the ones the recording was made with (fingerprint %s, the recording's %s); steps are matched by name", f[1], fp, f[9]))
	}
	return nil
}

// loopLine: loop ID capacity N first F last L [wrapped].
func (r *replayer) loopLine(f []string) error {
	if err := r.endSection(); err != nil {
		return err
	}
	if (len(f) != 8 && len(f) != 9) || f[2] != "capacity" || f[4] != "first" || f[6] != "last" || (len(f) == 9 && f[8] != "wrapped") {
		return r.failf("malformed loop line: want loop ID capacity N first F last L [wrapped]")
	}
	id, err1 := strconv.Atoi(f[1])
	first, err2 := strconv.ParseUint(f[5], 10, 64)
	last, err3 := strconv.ParseUint(f[7], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || first == 0 || last+1 < first {
		return r.failf("malformed loop line: %q", strings.Join(f, " "))
	}
	wrapped := len(f) == 9
	if wrapped != (first > 1) {
		return r.failf("loop %d: its first step is %d, so its ring has wrapped if and only if that is more than 1", id, first)
	}
	r.secs++
	r.sec = &section{loop: id, first: first, last: last, wrapped: wrapped, next: first, line: r.line}
	return nil
}

// endSection checks that the section now ending holds every step its loop
// line announced, and notes what a wrapped ring leaves unknown.
func (r *replayer) endSection() error {
	s := r.sec
	if s == nil {
		return nil
	}
	if s.next != s.last+1 {
		return r.failf("loop %d: its steps end at %d, its loop line (line %d) says they end at %d: steps are missing", s.loop, s.next-1, s.line, s.last)
	}
	if s.wrapped {
		n := fmt.Sprintf("loop %d: the ring wrapped: its steps 1-%d were overwritten", s.loop, s.first-1)
		if s.old > 0 {
			n += fmt.Sprintf("; %d instances that began before step %d (old) were replayed from every reachable configuration of the state their first recorded step is from, with options and variables unknown, keeping those that answer each step as recorded", s.old, s.first)
		}
		r.notes = append(r.notes, n)
	}
	r.sec = nil
	return nil
}

// instanceLine: new MACHINE ID [name=value...] | old MACHINE ID.
func (r *replayer) instanceLine(f []string) error {
	if r.sec == nil {
		return r.failf("%s line before any loop line", f[0])
	}
	if len(f) < 3 {
		return r.failf("malformed %s line: want %s MACHINE ID", f[0], f[0])
	}
	id, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return r.failf("malformed %s line: id %q", f[0], f[2])
	}
	tm := r.machines[f[1]]
	if tm == nil {
		return r.failf("the tables have no machine %s", f[1])
	}
	k := instKey{r.secs, f[1], id}
	if r.insts[k] != nil {
		return r.failf("%s %d: a second instance line", f[1], id)
	}
	in := &instance{tm: tm, name: f[1] + " " + f[2], old: f[0] == "old"}
	r.insts[k] = in
	if in.old {
		if len(f) != 3 {
			return r.failf("old %s: an old instance's options are unknown", in.name)
		}
		if !r.sec.wrapped {
			return r.failf("old %s in loop %d, whose ring did not wrap: it holds every step since the loop started", in.name, r.sec.loop)
		}
		r.sec.old++
		return nil
	}
	m := tm.m
	vals := make([]int, len(m.Vars))
	given := make([]bool, len(m.Vars))
	for i, v := range m.Vars {
		vals[i] = v.Initial
	}
	for _, kv := range f[3:] {
		name, value, ok := strings.Cut(kv, "=")
		i := varIndex(m, name)
		if !ok || i < 0 || !m.Vars[i].Option {
			return r.failf("new %s: %q is not an option of the tables' %s", in.name, kv, m.Name)
		}
		x, ok := parseValue(&m.Vars[i], value)
		if !ok {
			return r.failf("new %s: %q is not a value of option %s", in.name, value, name)
		}
		vals[i], given[i] = x, true
	}
	for i, v := range m.Vars {
		if v.Option && !given[i] {
			return r.failf("new %s: the recording does not give option %s", in.name, v.Name)
		}
	}
	// The recording holds the instance's beginning: its first step is from the
	// initial configuration.
	in.confs = []config{{m.Initial, vals}}
	return nil
}

// reachable returns the reachable configurations of tm in state that keep.
func (r *replayer) reachable(tm *tableMachine, state int, keep func([]int) bool) []config {
	if tm.graph == nil {
		g, err := gen.Explore(r.pkg, tm.m)
		if err != nil {
			return nil
		}
		tm.graph = g
	}
	var out []config
	for _, id := range tm.graph.Order {
		vals := make([]int, len(tm.m.Vars))
		if tm.graph.Space.Decode(id, vals) == state && keep(vals) {
			out = append(out, config{state, vals})
		}
	}
	return out
}

func varIndex(m *gen.Machine, name string) int {
	for i, v := range m.Vars {
		if v.Name == name {
			return i
		}
	}
	return -1
}

func parseValue(v *gen.Var, s string) (int, bool) {
	switch v.Kind {
	case gen.KindBool:
		switch s {
		case "true":
			return 1, true
		case "false":
			return 0, true
		}
	case gen.KindEnum:
		for i, x := range v.Values {
			if x.Name == s {
				return i, true
			}
		}
	case gen.KindInt:
		if n, err := strconv.Atoi(s); err == nil && n >= v.Min && n <= v.Max {
			return n, true
		}
	}
	return 0, false
}

func formatValue(v *gen.Var, x int) string {
	switch v.Kind {
	case gen.KindBool:
		return strconv.FormatBool(x != 0)
	case gen.KindEnum:
		if x >= 0 && x < len(v.Values) {
			return v.Values[x].Name
		}
	}
	return strconv.Itoa(x)
}

func describeVars(m *gen.Machine, vals []int) string {
	parts := make([]string, len(m.Vars))
	for i := range m.Vars {
		parts[i] = m.Vars[i].Name + "=" + formatValue(&m.Vars[i], vals[i])
	}
	return strings.Join(parts, " ")
}

// recorded is what a step line says the table answered.
type recorded struct {
	rejected bool
	to       string
	actions  []string
}

func (a recorded) String() string {
	if a.rejected {
		return "rejected"
	}
	return "-> " + a.to + " [" + strings.Join(a.actions, " ") + "]"
}

// step: SEQ MACHINE ID FROM EVENT -> TO [ACTIONS...] | SEQ MACHINE ID FROM EVENT rejected.
func (r *replayer) step(line string, f []string) error {
	seq, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return r.failf("%q is not a line of the format", line)
	}
	if r.sec == nil {
		return r.failf("step %d before any loop line", seq)
	}
	var rec recorded
	switch {
	case len(f) == 6 && f[5] == "rejected":
		rec.rejected = true
	case len(f) >= 8 && f[5] == "->" && strings.HasPrefix(f[7], "[") && strings.HasSuffix(f[len(f)-1], "]"):
		rec.to = f[6]
		acts := strings.TrimSuffix(strings.TrimPrefix(strings.Join(f[7:], " "), "["), "]")
		rec.actions = strings.Fields(acts)
	default:
		return r.failf("malformed step line: want SEQ MACHINE ID STATE EVENT -> STATE [ACTIONS] or SEQ MACHINE ID STATE EVENT rejected")
	}
	s := r.sec
	switch {
	case seq > s.next:
		return r.failf("step %d: the recording skips from step %d to %d of loop %d: steps are missing", seq, s.next-1, seq, s.loop)
	case seq < s.next:
		return r.failf("step %d comes after step %d of loop %d: steps are repeated or out of order", seq, s.next-1, s.loop)
	}
	s.next++
	id, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return r.failf("malformed step line: id %q", f[2])
	}
	in := r.insts[instKey{r.secs, f[1], id}]
	if in == nil {
		return r.failf("step %d: %s %s has no new or old line before its first step", seq, f[1], f[2])
	}
	r.steps++
	r.used[f[1]] = true
	ill := func(state, vars, table, format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		return errIllegal{&illegalStep{
			File: r.file, Line: r.line, Step: seq, Loop: &s.loop, Machine: f[1], ID: id,
			State: state, Vars: vars, Event: f[4], Table: table, Recording: rec.String(),
			Message: fmt.Sprintf("%s:%d: step %d: %s", r.file, r.line, seq, msg),
		}}
	}
	tm, m := in.tm, in.tm.m
	from, ok := tm.states[f[3]]
	if !ok {
		return ill(f[3], "", "", "%s in state %s: the tables' %s has no state %s", in.name, f[3], m.Name, f[3])
	}
	if !in.started && in.old {
		in.confs = r.reachable(tm, from, func([]int) bool { return true })
		if len(in.confs) == 0 {
			return ill(f[3], "", "", "%s (old) in state %s: no reachable configuration of the tables' %s is in that state", in.name, f[3], m.Name)
		}
	}
	cur := in.confs[0].state
	if from != cur {
		if !in.started {
			return ill(f[3], "", "", "%s starts in state %s (the tables' initial state), the recording's first step is from %s", in.name, m.States[cur].Name, f[3])
		}
		return ill(f[3], "", "", "%s is in state %s after its step %d (line %d), the recording says it is in %s", in.name, m.States[cur].Name, in.last, in.lastAt, f[3])
	}
	in.started = true
	in.last, in.lastAt = seq, r.line
	vars := ""
	if len(in.confs) == 1 {
		vars = describeVars(m, in.confs[0].vals)
	}
	where := func() string {
		if len(in.confs) == 1 {
			return fmt.Sprintf("%s in state %s (%s)", in.name, f[3], vars)
		}
		return fmt.Sprintf("%s in state %s (variables unknown: one of %d reachable configurations)", in.name, f[3], len(in.confs))
	}
	ev, ok := tm.events[f[4]]
	if !ok {
		return ill(f[3], vars, "no such event", "%s: event %s: the tables' %s has no event %s, the recording says %v", where(), f[4], m.Name, f[4], rec)
	}
	var kept []config
	var answers []string
	seen := map[string]bool{}
	for _, c := range in.confs {
		a, next := answer(r.pkg, m, c, ev[0], ev[1])
		if a.matches(rec) {
			kept = appendConfig(kept, next)
			continue
		}
		if s := a.String(); !seen[s] {
			seen[s] = true
			answers = append(answers, s)
		}
	}
	if len(kept) == 0 {
		table := strings.Join(answers, ", or ")
		return ill(f[3], vars, table, "%s: event %s: the table answers %s, the recording says %v", where(), f[4], table, rec)
	}
	in.confs = kept
	return nil
}

// tableAnswer is what the tables answer to an event in a configuration.
type tableAnswer struct {
	m        *gen.Machine
	row      *gen.Row // nil: no row answers
	to       int
	actions  []int
	rejected bool
}

func (a tableAnswer) String() string {
	if a.row == nil {
		return "nothing (no row answers it)"
	}
	at := fmt.Sprintf(" (%s:%d)", a.row.Pos.File, a.row.Pos.Line)
	if a.rejected {
		if a.row.Reason != "" {
			return "rejected: " + a.row.Reason + at
		}
		return "rejected" + at
	}
	names := make([]string, len(a.actions))
	for i, x := range a.actions {
		names[i] = a.m.Actions[x].Name
	}
	return "-> " + a.m.States[a.to].Name + " [" + strings.Join(names, " ") + "]" + at
}

func (a tableAnswer) matches(rec recorded) bool {
	if a.row == nil || a.rejected != rec.rejected {
		return false
	}
	if a.rejected {
		return true
	}
	if a.m.States[a.to].Name != rec.to || len(a.actions) != len(rec.actions) {
		return false
	}
	for i, x := range a.actions {
		if a.m.Actions[x].Name != rec.actions[i] {
			return false
		}
	}
	return true
}

// answer fires (event, outcome) on c with gen's interpreter: the row that
// answers, and the configuration it leads to. A rejection changes nothing.
func answer(pkg *gen.Package, m *gen.Machine, c config, event, outcome int) (tableAnswer, config) {
	ri := m.Match(c.state, event, outcome, c.vals)
	if ri < 0 {
		return tableAnswer{m: m}, c
	}
	row := &m.Rows[ri]
	a := tableAnswer{m: m, row: row, to: c.state}
	switch row.Kind {
	case gen.RowReject:
		a.rejected = true
		return a, c
	case gen.RowTransition:
		a.actions = row.Do
	}
	next := config{vals: make([]int, len(c.vals))}
	next.state = m.Apply(ri, c.state, c.vals, next.vals)
	a.to = next.state
	return a, next
}

// appendConfig adds c to cs unless it is there already.
func appendConfig(cs []config, c config) []config {
	for _, x := range cs {
		if x.state == c.state && equalInts(x.vals, c.vals) {
			return cs
		}
	}
	return append(cs, c)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
