package verify

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fsmkernel/fsmkernel/gen"
)

// Behaviour scripts run against the tables themselves: RunScript interprets
// every row as the checker does, so a script says what a table does without
// generated code, and a counterexample (Violation.Script) fails on the table
// the checker found it in and passes once the table is fixed.
//
// The format is the one of the kernel's scripts (statemachine/testdata/
// behaviours): one command per line; blank lines are skipped; "#" starts a
// comment that runs to the end of the line; every name is the spec's name.
//
//	new NAME MACHINE [option=value ...]
//	    Create instance NAME of MACHINE with the declared initial options,
//	    changed by the given ones.
//	fire NAME event
//	fire NAME event(outcome)
//	    Deliver the event as the generated machine does, then check the
//	    machine's invariants. A rejected event is an error unless the next
//	    command is "want NAME rejected"; an event no row answers, or two rows
//	    do, ends the script.
//	step NAME event
//	step NAME event(outcome)
//	    Deliver the event as the model checker does: whatever the table
//	    answers, a rejection included (the machine stays where it is), is
//	    taken, and nothing is checked but the expectations that follow. A step
//	    that breaks a property (an event no row answers, an action beyond its
//	    multiplicity, ...) is remembered for "want NAME holds" and, as in the
//	    search, not taken: the machine stays where it was. So a script of steps
//	    only visits configurations the search visits, and a property the
//	    checker proves holds at every line of it.
//	want NAME actions [action ...]
//	    The actions the table answered NAME's last fire or step with, exactly
//	    and in order.
//	want NAME rejected
//	    NAME's last fire or step was rejected and left the state and the
//	    variables unchanged.
//	want NAME state STATE
//	want NAME var variable=value [variable=value ...]
//	want NAME total action=count [action=count ...]
//	    The current state; the current values of variables; how many times
//	    each action was performed since "new" (by the fires, and by the steps
//	    taken).
//	want NAME holds PROPERTY
//	    A property the model checker proves holds on NAME's run so far.
//	    Properties of the configuration reached:
//	      invariant INV      the invariant named INV holds
//	      invariants         every invariant holds
//	      terminalReachable  a terminal configuration is reachable from it
//	      noDeadlock         it is terminal, or some event changes it
//	    Properties of the run since "new" (no step has broken them):
//	      total              every event had an answer
//	      deterministic      never two
//	      inRange            every update stayed in its variable's domain
//	      multiplicities     no action beyond its max
//	      order              the actions' after, notAfter and with
//	      terminalQuiet      nothing happened in a terminal configuration
//	      obligation OBL     the obligation named OBL was never violated
//
// Values are written as true/false, an enumeration value's name, or a decimal
// number; an event's outcome as the outcome value's name.

// RunScript runs the behaviour script src (named file in messages) against the
// tables of pkg. It returns every failure, each naming file:line; it stops at
// the first error that makes the rest meaningless (a syntax error, an unknown
// name, an unexpected rejection), while failing expectations are all reported.
func RunScript(pkg *gen.Package, file string, src []byte) []error {
	r := &scriptRun{pkg: pkg, file: file, compiled: map[*gen.Machine]*compiled{}, insts: map[string]*scriptInst{}}
	r.run(string(src))
	return r.errs
}

type scriptRun struct {
	pkg      *gen.Package
	file     string
	compiled map[*gen.Machine]*compiled
	insts    map[string]*scriptInst
	errs     []error
}

// scriptInst is one machine of a script: a checker of the machine alone,
// whose single state it advances.
type scriptInst struct {
	m  *gen.Machine // the machine, or nil for a product
	c  *compiled    // the machine's
	pr *gen.Product // the product, or nil for a machine
	ck *checker
	// st is the configuration and monitors of every instance, as the checker
	// keeps them; a product's instances are never reordered (no symmetry).
	st     []int32
	totals map[string]int
	// broken holds, per property, the first step that broke it.
	broken map[string]brokenAt
	last   *scriptStep
}

type brokenAt struct {
	line       int
	text, what string
}

type scriptStep struct {
	line     int
	text     string
	actions  []int
	rejected bool
	before   int32 // the configuration before the step
}

// failf records a failure at line.
func (r *scriptRun) failf(line int, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s:%d: %s", r.file, line, fmt.Sprintf(format, args...)))
}

func (r *scriptRun) run(src string) {
	var pending *scriptStep // a rejected fire the next command must expect
	var pendingName string
	for i, raw := range strings.Split(src, "\n") {
		line := i + 1
		text, _, _ := strings.Cut(raw, "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		text = strings.Join(fields, " ")
		if pending != nil {
			if !(len(fields) == 3 && fields[0] == "want" && fields[1] == pendingName && fields[2] == "rejected") {
				r.failf(pending.line, "%s\n    unexpected rejection\n    (expect it with \"want %s rejected\" on the next line)", pending.text, pendingName)
				return
			}
			pending = nil
		}
		var ok bool
		switch fields[0] {
		case "new":
			ok = r.newInst(line, text, fields)
		case "fire", "step":
			var st *scriptStep
			st, ok = r.fire(line, text, fields)
			if ok && st.rejected && fields[0] == "fire" {
				pending, pendingName = st, fields[1]
			}
		case "want":
			ok = r.want(line, text, fields)
		default:
			r.failf(line, "%s: unknown command %q (new, fire, step, want)", text, fields[0])
		}
		if !ok {
			return
		}
	}
	if pending != nil {
		r.failf(pending.line, "%s\n    unexpected rejection\n    (expect it with \"want %s rejected\" on the next line)", pending.text, pendingName)
	}
}

func (r *scriptRun) machineNames() string {
	var names []string
	for _, m := range r.pkg.Machines {
		names = append(names, m.Name)
	}
	for _, pr := range r.pkg.Products {
		names = append(names, "product "+pr.Name)
	}
	return strings.Join(names, ", ")
}

// parseVar parses a script value of variable v.
func parseVar(v *gen.Var, s string) (int, error) {
	switch v.Kind {
	case gen.KindBool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not true or false", s)
		}
		if b {
			return 1, nil
		}
		return 0, nil
	case gen.KindEnum:
		var names []string
		for i, n := range v.Values {
			if n.Name == s {
				return i, nil
			}
			names = append(names, n.Name)
		}
		return 0, fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	if n < v.Min || n > v.Max {
		return 0, fmt.Errorf("%d is outside %d..%d", n, v.Min, v.Max)
	}
	return n, nil
}

func (r *scriptRun) newInst(line int, text string, fields []string) bool {
	if len(fields) < 3 {
		r.failf(line, "%s: want: new NAME MACHINE [option=value ...]", text)
		return false
	}
	name := fields[1]
	if _, dup := r.insts[name]; dup {
		r.failf(line, "%s: instance %q already exists", text, name)
		return false
	}
	mi := slices.IndexFunc(r.pkg.Machines, func(m *gen.Machine) bool { return m.Name == fields[2] })
	if mi < 0 {
		if pi := slices.IndexFunc(r.pkg.Products, func(pr *gen.Product) bool { return pr.Name == fields[2] }); pi >= 0 {
			return r.newProduct(line, text, fields, r.pkg.Products[pi])
		}
		r.failf(line, "%s: unknown machine %q (%s)", text, fields[2], r.machineNames())
		return false
	}
	m := r.pkg.Machines[mi]
	vals := make([]int, len(m.Vars))
	for i, v := range m.Vars {
		vals[i] = v.Initial
	}
	for _, kv := range fields[3:] {
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			r.failf(line, "%s: option %q: want option=value", text, kv)
			return false
		}
		vi := slices.IndexFunc(m.Vars, func(v gen.Var) bool { return v.Name == key && v.Option })
		if vi < 0 {
			r.failf(line, "%s: machine %s has no option %q", text, m.Name, key)
			return false
		}
		x, err := parseVar(&m.Vars[vi], val)
		if err != nil {
			r.failf(line, "%s: option %s: %v", text, key, err)
			return false
		}
		vals[vi] = x
	}
	ck, err := newChecker(r.pkg, alone(m, mi), Options{}, m.Obligations, r.compiled)
	if err != nil {
		r.failf(line, "%s: %v", text, err)
		return false
	}
	in := &scriptInst{m: m, c: ck.insts[0].c, ck: ck, totals: map[string]int{}, broken: map[string]brokenAt{}}
	in.st = []int32{int32(in.c.sp.Encode(m.Initial, vals)), 0}
	if vo, vt := ck.initialObligations(in.st); vo != nil {
		in.broken[vo.prop] = brokenAt{line: line, text: text, what: fmt.Sprintf("%s: %s in the initial configuration %s", oblHeader(vo.o), vt.Text, in.c.sp.Describe(int(in.st[0])))}
	}
	r.insts[name] = in
	return true
}

// event parses "event" or "event(outcome)" for machine m.
func (r *scriptRun) event(m *gen.Machine, s string) (e, o int, err error) {
	name, out := s, ""
	if open := strings.IndexByte(s, '('); open >= 0 {
		if !strings.HasSuffix(s, ")") || open == 0 || open == len(s)-2 {
			return 0, 0, fmt.Errorf("malformed event %q: want event or event(outcome)", s)
		}
		name, out = s[:open], s[open+1:len(s)-1]
	}
	e = slices.IndexFunc(m.Events, func(ev gen.Event) bool { return ev.Name == name })
	if e < 0 {
		var names []string
		for _, ev := range m.Events {
			names = append(names, ev.Name)
		}
		return 0, 0, fmt.Errorf("unknown event %q (events: %s)", name, strings.Join(names, ", "))
	}
	enum := m.Events[e].Outcome
	switch {
	case enum < 0 && out != "":
		return 0, 0, fmt.Errorf("event %q carries no outcome, got %q", name, out)
	case enum < 0:
		return e, 0, nil
	}
	var names []string
	for _, v := range r.pkg.Outcomes[enum].Values {
		names = append(names, v.Name)
	}
	if out == "" {
		return 0, 0, fmt.Errorf("event %q needs an outcome: %s(%s)", name, name, strings.Join(names, "|"))
	}
	o = slices.Index(names, out)
	if o < 0 {
		return 0, 0, fmt.Errorf("event %q: unknown outcome %q (outcomes: %s)", name, out, strings.Join(names, ", "))
	}
	return e, o, nil
}

func (r *scriptRun) fire(line int, text string, fields []string) (*scriptStep, bool) {
	cmd := fields[0]
	if len(fields) != 3 && (cmd != "step" || len(fields) != 5) {
		r.failf(line, "%s: want: %s NAME event[(outcome)]", text, cmd)
		return nil, false
	}
	in, ok := r.insts[fields[1]]
	if !ok {
		r.failf(line, "%s: no instance %q", text, fields[1])
		return nil, false
	}
	if in.pr != nil {
		return r.productStep(line, text, fields, in)
	}
	if len(fields) != 3 {
		r.failf(line, "%s: want: %s NAME event[(outcome)]", text, cmd)
		return nil, false
	}
	e, o, err := r.event(in.m, fields[2])
	if err != nil {
		r.failf(line, "%s: %v", text, err)
		return nil, false
	}
	st := &scriptStep{line: line, text: text, before: in.st[0]}
	in.last = st
	t := in.c.at(int(in.st[0]), in.c.cellBase[e]+o)
	broke, taken := in.deliver(delivery{event: e, outcome: o, sender: -1, bounce: -1}, cmd == "fire")
	for _, b := range broke {
		if _, seen := in.broken[b[0]]; !seen {
			in.broken[b[0]] = brokenAt{line: line, text: text, what: b[1]}
		}
	}
	if t.next < 0 {
		if cmd == "fire" {
			r.failf(line, "%s\n    %s", text, broke[0][1])
			return nil, false
		}
		return st, true
	}
	row := &in.m.Rows[t.row]
	st.rejected = row.Kind == gen.RowReject
	if row.Kind == gen.RowTransition {
		st.actions = row.Do
		for _, a := range row.Do {
			if taken {
				in.totals[in.m.Actions[a].Name]++
			}
		}
	}
	if cmd == "fire" && !st.rejected {
		if inv := in.c.invariant(int(in.st[0])); inv >= 0 {
			iv := &in.m.Invariants[inv]
			r.failf(line, "%s\n    invariant %q (%s) violated in %s", text, iv.Name, posLine(iv.Pos), in.c.sp.Describe(int(in.st[0])))
		}
	}
	return st, true
}

// deliver takes d as the checker does, and returns the properties it broke
// (property, what happened). A step that breaks one is not taken, unless move
// says to move as the generated machine does, which has no monitors (a
// machine's fire; the table's answer to d is then t).
func (in *scriptInst) deliver(d delivery, move bool) (broke [][2]string, taken bool) {
	cur := slices.Clone(in.st)
	l := label{inst: int16(d.inst), event: uint8(d.event), outcome: uint8(d.outcome), sender: int16(d.sender)}
	ok := in.probe(cur, d, l, func(prop, msg string) { broke = append(broke, [2]string{prop, msg}) })
	switch {
	case ok:
		in.st = cur
	case move && in.pr == nil:
		if t := in.c.at(int(in.st[0]), in.c.cellBase[d.event]+d.outcome); t.next >= 0 {
			in.st[0] = t.next // the monitors stay as they were
			return broke, true
		}
		return broke, false
	default:
		return broke, false
	}
	return broke, true
}

// probe delivers d (step l) to st in place as the search does; record
// receives the violations. It reports whether the search would take the step.
func (in *scriptInst) probe(st []int32, d delivery, l label, record func(prop, msg string)) bool {
	in.ck.record = record
	defer func() { in.ck.record = nil }()
	return in.ck.step(0, st, d, l)
}

// successors calls f with every state the search reaches from st in one step
// (an event from the environment or a request), until f returns true.
func (in *scriptInst) successors(st []int32, f func(next []int32) bool) bool {
	ck := in.ck
	discard := func(string, string) {}
	for i, x := range ck.insts {
		comp := ck.pr.Components[x.comp]
		for cell := 0; cell < x.c.ncells; cell++ {
			e, o := x.c.cellEvent[cell], x.c.cellOutcome[cell]
			if comp.Internal[e] {
				continue
			}
			next := slices.Clone(st)
			if in.probe(next, delivery{inst: i, event: e, outcome: o, sender: -1, bounce: -1}, label{inst: int16(i), event: uint8(e), outcome: uint8(o), sender: -1}, discard) && f(next) {
				return true
			}
		}
	}
	for _, rq := range ck.pr.Requests {
		for _, i := range ck.groups[rq.From] {
			if !containsInt(rq.States, int(st[2*i])/ck.insts[i].c.sp.NVals) {
				continue
			}
			for _, target := range ck.groups[rq.To] {
				next := slices.Clone(st)
				d := delivery{inst: target, event: rq.Event, outcome: rq.Outcome, sender: i, bounce: rq.OnReject, bounceOutcome: rq.OnRejectOutcome}
				if in.probe(next, d, label{inst: int16(target), event: uint8(rq.Event), outcome: uint8(rq.Outcome), sender: int16(i)}, discard) && f(next) {
					return true
				}
			}
		}
	}
	return false
}

// allTerminal reports whether every instance of st is terminal.
func (in *scriptInst) allTerminal(st []int32) bool {
	for i, x := range in.ck.insts {
		if !x.c.terminal(int(st[2*i])) {
			return false
		}
	}
	return true
}

// terminalReachable reports whether a configuration where every instance is
// terminal is reachable from the current one, over the steps the search takes.
func (in *scriptInst) terminalReachable() bool {
	key := func(st []int32) string { return fmt.Sprint(st) }
	seen := map[string]bool{key(in.st): true}
	queue := [][]int32{in.st}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		if in.allTerminal(st) {
			return true
		}
		in.successors(st, func(next []int32) bool {
			if k := key(next); !seen[k] {
				seen[k] = true
				queue = append(queue, next)
			}
			return false
		})
	}
	return false
}

// deadlocked reports whether the current configuration is not terminal and
// every step leaves it (with its monitors) unchanged.
func (in *scriptInst) deadlocked() bool {
	if in.allTerminal(in.st) {
		return false
	}
	return !in.successors(in.st, func(next []int32) bool { return !slices.Equal(next, in.st) })
}

// stateViolations returns what the search finds wrong with the current
// configuration itself: invariants, outlives.
func (in *scriptInst) stateViolations() map[string]string {
	out := map[string]string{}
	ck := in.ck
	ck.states = append(ck.states[:0], in.st...)
	ck.record = func(prop, msg string) {
		if _, seen := out[prop]; !seen {
			out[prop] = msg
		}
	}
	defer func() { ck.record = nil }()
	ck.checkState(0)
	return out
}

func (in *scriptInst) actionIndex(name string) int {
	return slices.IndexFunc(in.m.Actions, func(a gen.Action) bool { return a.Name == name })
}

func (in *scriptInst) actionNames() string {
	var names []string
	for _, a := range in.m.Actions {
		names = append(names, a.Name)
	}
	return strings.Join(names, ", ")
}

func (in *scriptInst) actionList(acts []int) string {
	if len(acts) == 0 {
		return "(none)"
	}
	var names []string
	for _, a := range acts {
		names = append(names, in.m.Actions[a].Name)
	}
	return strings.Join(names, " ")
}

func (in *scriptInst) vars() []int {
	vals := make([]int, len(in.m.Vars))
	in.c.sp.Decode(int(in.st[0]), vals)
	return vals
}

func (in *scriptInst) state() int { return int(in.st[0]) / in.c.sp.NVals }

// holdsProps maps the names "want NAME holds" takes for the properties of the
// run to the checker's.
var holdsProps = map[string]string{
	"total":          PropTotal,
	"deterministic":  PropDeterministic,
	"inRange":        PropInRange,
	"multiplicities": PropMultiplicity,
	"order":          PropOrder,
	"terminalQuiet":  PropTerminalQuiet,
}

func (r *scriptRun) want(line int, text string, fields []string) bool {
	if len(fields) < 3 {
		r.failf(line, "%s: want: want NAME actions|rejected|state|var|total|holds ...", text)
		return false
	}
	in, ok := r.insts[fields[1]]
	if !ok {
		r.failf(line, "%s: no instance %q", text, fields[1])
		return false
	}
	stepText := "(no step yet)"
	if in.last != nil {
		stepText = fmt.Sprintf("line %d: %s", in.last.line, in.last.text)
	}
	args := fields[3:]
	if in.pr != nil && fields[2] != "holds" {
		r.failf(line, "%s: %s is product %s: want only \"want %s holds PROPERTY\"", text, fields[1], in.pr.Name, fields[1])
		return false
	}
	switch fields[2] {
	case "actions":
		if in.last == nil {
			r.failf(line, "%s: %s has not fired yet", text, fields[1])
			return false
		}
		var want []int
		for _, a := range args {
			i := in.actionIndex(a)
			if i < 0 {
				r.failf(line, "%s: unknown action %q (actions: %s)", text, a, in.actionNames())
				return false
			}
			want = append(want, i)
		}
		switch {
		case in.last.rejected:
			r.failf(line, "%s\n    step: %s\n    got:  rejected\n    want: %s", text, stepText, in.actionList(want))
		case !slices.Equal(in.last.actions, want):
			r.failf(line, "%s\n    step: %s\n    got:  %s\n    want: %s", text, stepText, in.actionList(in.last.actions), in.actionList(want))
		}
	case "rejected":
		if len(args) != 0 {
			r.failf(line, "%s: want: want NAME rejected", text)
			return false
		}
		switch {
		case in.last == nil:
			r.failf(line, "%s: %s has not fired yet", text, fields[1])
			return false
		case !in.last.rejected:
			r.failf(line, "%s\n    step: %s\n    got:  actions %s\n    want: a rejection", text, stepText, in.actionList(in.last.actions))
		case in.last.before != in.st[0]:
			r.failf(line, "%s\n    step: %s\n    got:  %s after the rejection\n    want: %s (unchanged)", text, stepText, in.c.sp.Describe(int(in.st[0])), in.c.sp.Describe(int(in.last.before)))
		}
	case "state":
		if len(args) != 1 {
			r.failf(line, "%s: want: want NAME state STATE", text)
			return false
		}
		s := slices.IndexFunc(in.m.States, func(s gen.State) bool { return s.Name == args[0] })
		if s < 0 {
			var names []string
			for _, s := range in.m.States {
				names = append(names, s.Name)
			}
			r.failf(line, "%s: unknown state %q (states: %s)", text, args[0], strings.Join(names, ", "))
			return false
		}
		if got := in.state(); got != s {
			r.failf(line, "%s\n    step: %s\n    got:  %s\n    want: %s", text, stepText, in.m.States[got].Name, args[0])
		}
	case "var":
		if len(args) == 0 {
			r.failf(line, "%s: want: want NAME var variable=value ...", text)
			return false
		}
		vals := in.vars()
		for _, kv := range args {
			key, val, ok := strings.Cut(kv, "=")
			if !ok {
				r.failf(line, "%s: %q: want variable=value", text, kv)
				return false
			}
			vi := slices.IndexFunc(in.m.Vars, func(v gen.Var) bool { return v.Name == key })
			if vi < 0 {
				r.failf(line, "%s: no variable %q (vars: %s)", text, key, in.c.sp.Describe(int(in.st[0])))
				return false
			}
			v := &in.m.Vars[vi]
			x, err := parseVar(v, val)
			if err != nil {
				r.failf(line, "%s: variable %s: %v", text, key, err)
				return false
			}
			if vals[vi] != x {
				r.failf(line, "%s\n    step: %s\n    got:  %s=%s\n    want: %s=%s", text, stepText, key, formatVar(v, vals[vi]), key, formatVar(v, x))
			}
		}
	case "total":
		if len(args) == 0 {
			r.failf(line, "%s: want: want NAME total action=count ...", text)
			return false
		}
		for _, kv := range args {
			a, val, ok := strings.Cut(kv, "=")
			n, err := strconv.Atoi(val)
			if !ok || err != nil || n < 0 {
				r.failf(line, "%s: %q: want action=count", text, kv)
				return false
			}
			if in.actionIndex(a) < 0 {
				r.failf(line, "%s: unknown action %q (actions: %s)", text, a, in.actionNames())
				return false
			}
			if got := in.totals[a]; got != n {
				r.failf(line, "%s\n    step: %s\n    got:  %s=%d\n    want: %s=%d", text, stepText, a, got, a, n)
			}
		}
	case "holds":
		return r.holds(line, text, in, stepText, args)
	default:
		r.failf(line, "%s: unknown expectation %q (actions, rejected, state, var, total, holds)", text, fields[2])
		return false
	}
	return true
}

func (r *scriptRun) holds(line int, text string, in *scriptInst, stepText string, args []string) bool {
	if in.pr != nil {
		return r.productHolds(line, text, in, stepText, args)
	}
	usage := func() bool {
		r.failf(line, "%s: want: want NAME holds invariant INV|invariants|terminalReachable|noDeadlock|total|deterministic|inRange|multiplicities|order|terminalQuiet|obligation OBL", text)
		return false
	}
	if len(args) == 0 {
		return usage()
	}
	m := in.m
	here := in.c.sp.Describe(int(in.st[0]))
	fail := func(got string) {
		r.failf(line, "%s\n    step: %s\n    got:  %s\n    want: it holds", text, stepText, got)
	}
	runProp := func(prop string) {
		if b, bad := in.broken[prop]; bad {
			fail(fmt.Sprintf("broken at line %d (%s): %s", b.line, b.text, b.what))
		}
	}
	switch p := args[0]; p {
	case "invariant":
		if len(args) != 2 {
			return usage()
		}
		i := slices.IndexFunc(m.Invariants, func(iv gen.Invariant) bool { return iv.Name == args[1] })
		if i < 0 {
			var names []string
			for _, iv := range m.Invariants {
				names = append(names, iv.Name)
			}
			r.failf(line, "%s: machine %s has no invariant %q (invariants: %s)", text, m.Name, args[1], strings.Join(names, ", "))
			return false
		}
		if iv := &m.Invariants[i]; iv.Expr.Eval(in.state(), in.vars()) == 0 {
			fail(fmt.Sprintf("invariant %q (%s) does not hold in %s", iv.Name, posLine(iv.Pos), here))
		}
	case "obligation":
		if len(args) != 2 {
			return usage()
		}
		if !slices.ContainsFunc(m.Obligations, func(o gen.Obligation) bool { return o.Name == args[1] }) {
			var names []string
			for _, o := range m.Obligations {
				names = append(names, o.Name)
			}
			r.failf(line, "%s: machine %s has no obligation %q (obligations: %s)", text, m.Name, args[1], strings.Join(names, ", "))
			return false
		}
		runProp(ObligationProperty(args[1]))
	default:
		if len(args) != 1 {
			return usage()
		}
		switch p {
		case "invariants":
			if inv := in.c.invariant(int(in.st[0])); inv >= 0 {
				iv := &m.Invariants[inv]
				fail(fmt.Sprintf("invariant %q (%s) does not hold in %s", iv.Name, posLine(iv.Pos), here))
			}
		case "terminalReachable":
			if !in.terminalReachable() {
				fail("no terminal configuration is reachable from " + here)
			}
		case "noDeadlock":
			if in.deadlocked() {
				fail("every event leaves " + here + " unchanged")
			}
		default:
			prop, ok := holdsProps[p]
			if !ok {
				return usage()
			}
			runProp(prop)
		}
	}
	return true
}
