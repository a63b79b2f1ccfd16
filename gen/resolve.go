package gen

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// resolve turns the raw declarations of all files into the IR: names are looked up,
// expressions typed, wildcard rows expanded into sets. Semantic analysis of the
// resulting table (totality, determinism, reachability) is in analyze.go.

type resolver struct {
	d        *diags
	pkg      *Package
	outcomes map[string]int
	// badOutcome: events whose outcome enumeration is unknown (reported at
	// the event), so that their rows are not reported again for it.
	badOutcome map[eventKey]bool
}

type eventKey struct {
	m *Machine
	i int
}

func resolvePackage(files []*rawFile, d *diags) *Package {
	r := &resolver{d: d, pkg: &Package{}, outcomes: map[string]int{}, badOutcome: map[eventKey]bool{}}
	for _, f := range files {
		for _, e := range f.outcomes {
			if prev, dup := r.outcomes[e.name]; dup {
				d.add(e.pos, "outcome enumeration %q declared twice (first at %s)", e.name, posString(r.pkg.Outcomes[prev].Pos))
				continue
			}
			oe := &OutcomeEnum{Name: e.name, Description: e.desc, Pos: e.pos}
			r.needDesc(e.pos, "outcome enumeration "+strconv.Quote(e.name), e.desc)
			if len(e.values) == 0 {
				d.add(e.pos, "outcome enumeration %q has no values", e.name)
			}
			if len(e.values) > 255 {
				d.add(e.pos, "outcome enumeration %q has %d values; at most 255 fit in a uint8", e.name, len(e.values))
			}
			for _, v := range e.values {
				r.needDesc(v.pos, "outcome "+strconv.Quote(e.name+"."+v.name), v.desc)
				oe.Values = append(oe.Values, Named{Name: v.name, Description: v.desc})
			}
			r.outcomes[e.name] = len(r.pkg.Outcomes)
			r.pkg.Outcomes = append(r.pkg.Outcomes, oe)
		}
	}
	classifiers := map[string]Pos{}
	for _, f := range files {
		for _, c := range f.classifiers {
			if prev, dup := classifiers[c.name]; dup {
				d.add(c.pos, "classifier %q declared twice (first at %s)", c.name, posString(prev))
				continue
			}
			classifiers[c.name] = c.pos
			if x := r.classifier(c); x != nil {
				r.pkg.Classifiers = append(r.pkg.Classifiers, x)
			}
		}
	}
	machines := map[string]Pos{}
	for _, f := range files {
		if f.machine == nil {
			continue
		}
		if prev, dup := machines[f.machine.name]; dup && f.machine.name != "" {
			d.add(f.machine.pos, "machine %q declared twice (first at %s)", f.machine.name, posString(prev))
			continue
		}
		machines[f.machine.name] = f.machine.pos
		p := &parser{file: f.path, d: d}
		if m := r.machine(p, f.machine); m != nil {
			r.pkg.Machines = append(r.pkg.Machines, m)
		}
	}
	r.resolveProducts(files)
	return r.pkg
}

var errnoName = regexp.MustCompile(`^E[A-Z0-9]+$`)

func (r *resolver) classifier(c *rawClassifier) *Classifier {
	r.needDesc(c.pos, "classifier "+strconv.Quote(c.name), c.desc)
	if c.outcome.name == "" {
		return nil // no outcome key, or a classifier that is not a mapping: the parser said so
	}
	oi, ok := r.outcomes[c.outcome.name]
	if !ok {
		r.d.add(c.outcome.pos, "classifier %q yields unknown outcome enumeration %q", c.name, c.outcome.name)
		return nil
	}
	oe := r.pkg.Outcomes[oi]
	value := func(n *rawName) int {
		if n == nil {
			return -1
		}
		for i, v := range oe.Values {
			if v.Name == n.name {
				return i
			}
		}
		r.d.add(n.pos, "%q is not an outcome of %q (values: %s)", n.name, oe.Name, joinNamed(oe.Values))
		return -1
	}
	x := &Classifier{Name: c.name, Description: c.desc, Outcome: oi, Pos: c.pos,
		Success: value(c.success), Zero: value(c.zero), Default: value(c.deflt)}
	common := map[string]bool{}
	list := func(raw []rawErrno, where string) []ErrnoOutcome {
		var out []ErrnoOutcome
		seen := map[string]string{}
		for _, e := range raw {
			if where != "errors" && common[e.name] {
				seen[e.name] = "errors"
			}
			if !errnoName.MatchString(e.name) {
				r.d.add(e.pos, "%q is not an errno name (want e.g. EAGAIN, as in golang.org/x/sys/unix)", e.name)
				continue
			}
			if prev, dup := seen[e.name]; dup {
				r.d.add(e.pos, "classifier %q: errno %s listed in %s and in %s", c.name, e.name, prev, where)
				continue
			}
			seen[e.name] = where
			if where == "errors" {
				common[e.name] = true
			}
			out = append(out, ErrnoOutcome{Errno: e.name, Outcome: value(&e.outcome), Why: e.why})
		}
		return out
	}
	x.Errors = list(c.errors, "errors")
	x.Linux = list(c.linux, "linux")
	x.BSD = list(c.darwin, "darwin")
	return x
}

func posString(p Pos) string { return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col) }

func (r *resolver) needDesc(p Pos, what, desc string) {
	if desc == "" {
		r.d.add(p, "%s has no description", what)
	}
}

// names indexes a declaration list, reporting duplicates.
type nameIndex map[string]int

func (r *resolver) machine(p *parser, rm *rawMachine) *Machine {
	m := &Machine{Name: rm.name, Description: rm.desc, File: p.file, Pos: rm.pos, Initial: -1}
	r.needDesc(rm.pos, "machine "+strconv.Quote(rm.name), rm.desc)
	states, events, actions, vars := nameIndex{}, nameIndex{}, nameIndex{}, nameIndex{}
	var initials []rawName
	for _, s := range rm.states {
		r.needDesc(s.pos, "state "+strconv.Quote(s.name), s.desc)
		states[s.name] = len(m.States)
		if s.initial {
			initials = append(initials, s.rawName)
			m.Initial = len(m.States)
		}
		if s.initial && s.terminal {
			r.d.add(s.pos, "state %q is both initial and terminal", s.name)
		}
		m.States = append(m.States, State{Name: s.name, Description: s.desc, Terminal: s.terminal, Pos: s.pos})
	}
	switch {
	case len(rm.states) == 0:
		r.d.add(rm.pos, "machine %q has no states", rm.name)
	case len(initials) == 0:
		r.d.add(rm.states[0].pos, "machine %q has no initial state: mark one with \"initial: true\"", rm.name)
	case len(initials) > 1:
		for _, s := range initials[1:] {
			r.d.add(s.pos, "state %q is a second initial state (the first is %q)", s.name, initials[0].name)
		}
	}
	hasTerminal := false
	for _, s := range m.States {
		hasTerminal = hasTerminal || s.Terminal
	}
	if len(rm.states) > 0 && !hasTerminal {
		r.d.add(rm.pos, "machine %q has no terminal state: mark at least one with \"terminal: true\"", rm.name)
	}
	for _, e := range rm.events {
		r.needDesc(e.pos, "event "+strconv.Quote(e.name), e.desc)
		ev := Event{Name: e.name, Description: e.desc, Outcome: -1, Abnormal: e.abnormal, Pos: e.pos}
		if e.outcome != nil {
			if i, ok := r.outcomes[e.outcome.name]; ok {
				ev.Outcome = i
			} else {
				hint := nameIndex(r.outcomes).suggest(e.outcome.name)
				if hint == "" {
					hint = "; no file of this command line declares it (name the file of the outcomes too)"
				}
				r.d.add(e.outcome.pos, "event %q carries unknown outcome enumeration %q%s", e.name, e.outcome.name, hint)
				r.badOutcome[eventKey{m, len(m.Events)}] = true
			}
		}
		events[e.name] = len(m.Events)
		m.Events = append(m.Events, ev)
	}
	if len(rm.events) == 0 {
		r.d.add(rm.pos, "machine %q has no events", rm.name)
	}
	for _, v := range rm.vars {
		vars[v.name] = len(m.Vars)
		m.Vars = append(m.Vars, r.variable(p, v))
	}
	for _, a := range rm.actions {
		r.needDesc(a.pos, "action "+strconv.Quote(a.name), a.desc)
		actions[a.name] = len(m.Actions)
		m.Actions = append(m.Actions, Action{Name: a.name, Description: a.desc, Max: a.max, After: -1, Pos: a.pos})
	}
	for i, a := range rm.actions {
		for _, ef := range a.effects {
			vi, ok := vars[ef.name]
			if !ok {
				r.d.add(ef.pos, "action %q: effect on unknown variable %q", a.name, ef.name)
				continue
			}
			if m.Vars[vi].Option {
				r.d.add(ef.pos, "action %q: variable %q is an option; effects cannot change it", a.name, ef.name)
				continue
			}
			e := p.parseExpr(ef.value, exprScope{m: m}, m.Vars[vi].Kind, vi)
			if e == nil {
				continue
			}
			if e.Op != OpConst || e.Value < m.Vars[vi].Min || e.Value > m.Vars[vi].Max {
				r.d.add(ef.pos, "action %q: effect on %q must be a constant of its domain", a.name, ef.name)
				continue
			}
			m.Actions[i].Effects = append(m.Actions[i].Effects, Update{Var: vi, Value: e})
		}
		if a.after != nil {
			j, ok := actions[a.after.name]
			switch {
			case !ok:
				r.d.add(a.after.pos, "action %q: after names unknown action %q", a.name, a.after.name)
			case j == i:
				r.d.add(a.after.pos, "action %q cannot require itself", a.name)
			default:
				m.Actions[i].After = j
			}
		}
		if a.with.set {
			if a.with.any {
				r.d.add(a.with.pos, "action %q: with takes action names, not \"*\"", a.name)
			}
			for _, n := range a.with.names {
				if x, ok := actions[n.name]; ok && x != i {
					m.Actions[i].With = append(m.Actions[i].With, x)
				} else {
					r.d.add(n.pos, "action %q: with names %q, which is not another action", a.name, n.name)
				}
			}
		}
		if a.notAfter.set {
			if a.notAfter.any {
				r.d.add(a.notAfter.pos, "action %q: notAfter takes event and action names, not \"*\"", a.name)
			}
			for _, n := range a.notAfter.names {
				if e, ok := events[n.name]; ok {
					m.Actions[i].NotAfter = append(m.Actions[i].NotAfter, e)
				} else if x, ok := actions[n.name]; ok && x != i {
					m.Actions[i].NotAfterActions = append(m.Actions[i].NotAfterActions, x)
				} else {
					r.d.add(n.pos, "action %q: notAfter names %q, which is neither an event nor another action", a.name, n.name)
				}
			}
		}
	}
	for _, limit := range []struct {
		what string
		n    int
	}{{"states", len(m.States)}, {"events", len(m.Events)}, {"actions", len(m.Actions)}} {
		if limit.n > 255 {
			r.d.add(rm.pos, "machine %q has %d %s; at most 255 fit in a uint8", rm.name, limit.n, limit.what)
		}
	}
	r.sameNamespace(rm)
	for _, row := range rm.transitions {
		m.Rows = append(m.Rows, r.rows(p, m, row, states, events, actions, vars)...)
	}
	for _, inv := range rm.invariants {
		r.needDesc(inv.pos, "invariant "+strconv.Quote(inv.name), inv.desc)
		e := p.parseExpr(inv.expr, exprScope{m: m, allowState: true}, KindBool, -1)
		if e != nil {
			m.Invariants = append(m.Invariants, Invariant{Name: inv.name, Description: inv.desc, Expr: e, Pos: p.pos(inv.expr)})
		}
	}
	r.machineObligations(p, m, rm.obligations)
	return m
}

// sameNamespace reports a name declared as two different kinds of thing in one
// machine: generated identifiers and diagnostics stay unambiguous.
func (r *resolver) sameNamespace(rm *rawMachine) {
	seen := map[string]string{}
	check := func(n rawName, kind string) {
		if prev, ok := seen[n.name]; ok && n.name != "" {
			r.d.add(n.pos, "%s %q has the name of a %s of the same machine", kind, n.name, prev)
			return
		}
		seen[n.name] = kind
	}
	for _, s := range rm.states {
		check(s.rawName, "state")
	}
	for _, e := range rm.events {
		check(e.rawName, "event")
	}
	for _, a := range rm.actions {
		check(a.rawName, "action")
	}
	for _, v := range rm.vars {
		check(v.rawName, "variable")
	}
}

func (r *resolver) variable(p *parser, v *rawVar) Var {
	r.needDesc(v.pos, "variable "+strconv.Quote(v.name), v.desc)
	out := Var{Name: v.name, Description: v.desc, Option: v.option}
	if v.name == "state" || v.name == "true" || v.name == "false" {
		r.d.add(v.pos, "%q is reserved and cannot name a variable", v.name)
	}
	switch v.typ.name {
	case "bool":
		out.Kind, out.Min, out.Max = KindBool, 0, 1
		if len(v.values) > 0 || v.min != nil || v.max != nil {
			r.d.add(v.pos, "variable %q: a bool takes no values, min or max", v.name)
		}
	case "enum":
		out.Kind = KindEnum
		if len(v.values) < 2 {
			r.d.add(v.pos, "variable %q: an enum needs at least two values", v.name)
		}
		for _, val := range v.values {
			r.needDesc(val.pos, "value "+strconv.Quote(v.name+"."+val.name), val.desc)
			out.Values = append(out.Values, Named{Name: val.name, Description: val.desc})
		}
		out.Min, out.Max = 0, len(out.Values)-1
		if len(out.Values) > 255 {
			r.d.add(v.pos, "variable %q: at most 255 values", v.name)
		}
		if v.min != nil || v.max != nil {
			r.d.add(v.pos, "variable %q: an enum takes values, not min or max", v.name)
		}
	case "int":
		out.Kind = KindInt
		if v.min == nil || v.max == nil {
			r.d.add(v.pos, "variable %q: an int needs min and max", v.name)
			break
		}
		out.Min, out.Max = *v.min, *v.max
		if out.Min > out.Max {
			r.d.add(v.pos, "variable %q: min %d is above max %d", v.name, out.Min, out.Max)
			out.Max = out.Min
		}
		if out.Min < 0 || out.Max > 255 {
			r.d.add(v.pos, "variable %q: range %d..%d does not fit in a uint8 (0..255)", v.name, out.Min, out.Max)
		}
		if len(v.values) > 0 {
			r.d.add(v.pos, "variable %q: an int takes min and max, not values", v.name)
		}
	default:
		if v.typ.name != "" {
			r.d.add(v.typ.pos, "variable %q: unknown type %q (want bool, enum or int)", v.name, v.typ.name)
		}
	}
	out.Initial = out.Min
	if v.initial == nil {
		if !v.option {
			r.d.add(v.pos, "variable %q has no initial value", v.name)
		} else if out.Kind == KindEnum || out.Kind == KindBool {
			r.d.add(v.pos, "option %q needs an initial value: the default when the user sets none", v.name)
		}
		return out
	}
	idx := len(p.d.list)
	m := &Machine{Vars: []Var{out}}
	if e := p.parseExpr(v.initial, exprScope{m: m}, out.Kind, 0); e != nil {
		if e.Op != OpConst {
			r.d.add(p.pos(v.initial), "variable %q: initial value must be a constant", v.name)
		} else if e.Value < out.Min || e.Value > out.Max {
			r.d.add(p.pos(v.initial), "variable %q: initial value %d outside %d..%d", v.name, e.Value, out.Min, out.Max)
		} else {
			out.Initial = e.Value
		}
	} else if len(p.d.list) == idx {
		r.d.add(p.pos(v.initial), "variable %q: bad initial value", v.name)
	}
	return out
}

// maxGroups bounds the conditional action groups of one row: a row with k of
// them expands to 2^k rows.
const maxGroups = 3

// rows resolves one row as written, expanding its conditional action groups
// (SCXML's <if> in a transition's executable content) into the 2^k rows of
// the plain format: one per combination of the groups' conditions, guarded by
// the row's own guard and every group's condition or its negation, performing
// the actions of the groups that hold at their places. Everything after the
// resolver sees plain rows. Expanded rows keep the row's position.
func (r *resolver) rows(p *parser, m *Machine, raw *rawRow, states, events, actions, vars nameIndex) []Row {
	if len(raw.groups) == 0 {
		if rr, ok := r.row(p, m, raw, states, events, actions, vars); ok {
			return []Row{rr}
		}
		return nil
	}
	if len(raw.groups) > maxGroups {
		r.d.add(raw.groups[maxGroups].pos, "row has %d conditional action groups; at most %d (a row expands to 2^k rows): split the row or combine conditions", len(raw.groups), maxGroups)
		return nil
	}
	// Each condition is checked alone, so that its diagnostics point into it;
	// the row's own guard is checked (and reported) by row.
	okConds := true
	for _, g := range raw.groups {
		if g.when == nil || p.parseExpr(g.when, exprScope{m: m}, KindBool, -1) == nil {
			okConds = false
		}
	}
	ownOK := raw.when == nil || (&parser{file: p.file, d: &diags{}}).parseExpr(raw.when, exprScope{m: m}, KindBool, -1) != nil
	expanded := expandRow(raw)
	if !okConds || !ownOK {
		// Report the rest of the row once, as if every group held.
		all := *expanded[0]
		all.when = raw.when
		r.row(p, m, &all, states, events, actions, vars)
		return nil
	}
	first, ok := r.row(p, m, expanded[0], states, events, actions, vars)
	if !ok {
		return nil
	}
	out := []Row{first}
	// The other combinations differ only in their guards and in actions
	// already resolved in the first: they add no diagnostic of their own.
	saved := r.d.list
	for _, e := range expanded[1:] {
		if rr, ok := r.row(p, m, e, states, events, actions, vars); ok {
			out = append(out, rr)
		}
	}
	r.d.list = saved
	// Groups whose conditions exclude each other (readArmed && autoRead and
	// readArmed && !autoRead) make combinations no configuration satisfies:
	// they are dropped, so the machine has no row that can never fire.
	live := out[:0]
	for _, rr := range out {
		if satisfiable(m, rr.Guard) {
			rr.Guard = dedupeAnd(rr.Guard) // !a from one group, !a from another
			live = append(live, rr)
		}
	}
	if len(live) == 0 {
		return out // the row's own guard is never true: the analysis says so
	}
	return live
}

// satisfiable reports whether some valuation of the variables g reads, within
// their domains, makes g true.
func satisfiable(m *Machine, g *Expr) bool {
	if g == nil {
		return true
	}
	read := g.Vars(nil)
	vals := make([]int, len(m.Vars))
	for i, v := range m.Vars {
		vals[i] = v.Min
	}
	var try func(k int) bool
	try = func(k int) bool {
		if k == len(read) {
			return g.Eval(0, vals) != 0
		}
		v := &m.Vars[read[k]]
		for x := v.Min; x <= v.Max; x++ {
			vals[read[k]] = x
			if try(k + 1) {
				return true
			}
		}
		return false
	}
	return try(0)
}

// expandRow returns the 2^k plain rows of a row with k conditional action
// groups, the combination where every group holds first (the order in which
// such rows are written by hand).
func expandRow(raw *rawRow) []*rawRow {
	k := len(raw.groups)
	var out []*rawRow
	for mask := 0; mask < 1<<k; mask++ {
		e := *raw
		e.groups = nil
		e.do = nil
		e.set = append([]rawSet(nil), raw.set...)
		var conds []string
		if raw.when != nil {
			conds = append(conds, "("+raw.when.Value+")")
		}
		at := 0
		for i, g := range raw.groups {
			holds := mask&(1<<(k-1-i)) == 0
			e.do = append(e.do, raw.do[at:g.at]...)
			at = g.at
			text := ""
			if g.when != nil {
				text = g.when.Value
			}
			if holds {
				conds = append(conds, "("+text+")")
				e.do = append(e.do, g.do...)
				e.set = append(e.set, g.set...) // a variable the row sets too is "set twice"
			} else {
				conds = append(conds, "!("+text+")")
			}
		}
		e.do = append(e.do, raw.do[at:]...)
		when := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.ReplaceAll(strings.Join(conds, " && "), "\n", " "), Line: raw.pos.Line, Column: raw.pos.Col}
		if raw.when != nil {
			when.Line, when.Column = raw.when.Line, raw.when.Column
		}
		e.when = when
		out = append(out, &e)
	}
	return out
}

func (r *resolver) row(p *parser, m *Machine, raw *rawRow, states, events, actions, vars nameIndex) (Row, bool) {
	before := len(r.d.list)
	row := Row{Pos: raw.pos, To: -1, Reason: raw.reason}
	kinds := 0
	if raw.ignore {
		row.Kind = RowIgnore
		kinds++
	}
	if raw.reject {
		row.Kind = RowReject
		kinds++
	}
	if raw.transition {
		kinds++
	}
	switch {
	case kinds == 0:
		r.d.add(raw.pos, "row answers nothing: give \"to\", \"do\" or \"set\" for a transition, or \"ignore: true\" or \"reject: true\"")
	case kinds > 1:
		r.d.add(raw.pos, "row mixes answers: a row is a transition (to/do/set), \"ignore\" or \"reject\", one of them")
	}
	row.From = r.set(raw.from, raw.except, states, len(m.States), "state", "from", "except")
	row.On = r.set(raw.on, raw.exceptOn, events, len(m.Events), "event", "on", "exceptOn")
	// Outcomes: the events of a row must agree on the enumeration they carry.
	enum := -2
	for _, e := range row.On {
		if enum == -2 {
			enum = m.Events[e].Outcome
		} else if enum != m.Events[e].Outcome {
			enum = -3
		}
	}
	switch {
	case !raw.outcome.set:
		if enum >= 0 {
			r.d.add(raw.pos, "row on %s must say which outcomes it answers: \"outcome: <value>\", a list, or \"*\"", eventList(m, row.On))
		}
	case raw.outcome.any:
	case enum == -3:
		r.d.add(raw.outcome.pos, "row names outcomes, but its events carry different outcome enumerations; split the row")
	case enum == -1 && r.anyBadOutcome(m, row.On):
		// One root cause, one diagnostic: the event's unknown enumeration.
	case enum == -1:
		r.d.add(raw.outcome.pos, "row names outcomes, but %s carries none", eventList(m, row.On))
	case enum >= 0:
		oe := r.pkg.Outcomes[enum]
		idx := nameIndex{}
		for i, v := range oe.Values {
			idx[v.Name] = i
		}
		row.Outcomes = r.set(raw.outcome, rawList{}, idx, len(oe.Values), "outcome", "outcome", "")
		for _, nm := range raw.outcome.names {
			if _, ok := idx[nm.name]; !ok {
				r.d.add(nm.pos, "%q is not an outcome of %q (values: %s)", nm.name, oe.Name, joinNamed(oe.Values))
			}
		}
	}
	if raw.when != nil {
		row.Guard = p.parseExpr(raw.when, exprScope{m: m}, KindBool, -1)
	}
	if raw.to != nil {
		if i, ok := states[raw.to.name]; ok {
			row.To = i
		} else {
			if raw.to.name != "" {
				r.d.add(raw.to.pos, "unknown state %q%s", raw.to.name, states.suggest(raw.to.name))
			}
		}
	}
	for _, a := range raw.do {
		if i, ok := actions[a.name]; ok {
			row.Do = append(row.Do, i)
		} else {
			r.d.add(a.pos, "unknown action %q%s", a.name, actions.suggest(a.name))
		}
	}
	seen := map[int]bool{}
	for _, s := range raw.set {
		i, ok := vars[s.name]
		if !ok {
			r.d.add(s.pos, "unknown variable %q%s", s.name, vars.suggest(s.name))
			continue
		}
		if seen[i] {
			r.d.add(s.pos, "variable %q set twice in one row", s.name)
			continue
		}
		seen[i] = true
		v := m.Vars[i]
		if v.Option {
			r.d.add(s.pos, "variable %q is an option, set when the machine is created; rows cannot change it", s.name)
		}
		if e := p.parseExpr(s.value, exprScope{m: m}, v.Kind, i); e != nil {
			row.Set = append(row.Set, Update{Var: i, Value: e})
		}
	}
	if len(r.d.list) != before {
		return row, false
	}
	return row, true
}

// set resolves a from/on/outcome field with its exceptions into sorted indices.
func (r *resolver) set(l, except rawList, idx nameIndex, n int, kind, field, exceptField string) []int {
	if !l.set {
		return nil
	}
	in := make([]bool, n)
	if l.any {
		for i := range in {
			in[i] = true
		}
	}
	unknown := false
	for _, nm := range l.names {
		i, ok := idx[nm.name]
		if !ok {
			unknown = true
			if kind != "outcome" && nm.name != "" { // outcomes are reported with their enumeration
				r.d.add(nm.pos, "unknown %s %q%s", kind, nm.name, idx.suggest(nm.name))
			}
			continue
		}
		if in[i] {
			r.d.add(nm.pos, "%s %q listed twice in %q", kind, nm.name, field)
		}
		in[i] = true
	}
	if except.set {
		if !l.any {
			r.d.add(except.pos, "%q is only allowed with %s: \"*\"", exceptField, field)
		}
		for _, nm := range except.names {
			i, ok := idx[nm.name]
			if !ok {
				r.d.add(nm.pos, "unknown %s %q%s", kind, nm.name, idx.suggest(nm.name))
				continue
			}
			if l.any && !in[i] {
				r.d.add(nm.pos, "%s %q listed twice in %q", kind, nm.name, exceptField)
			}
			in[i] = false
		}
	}
	var out []int
	for i, ok := range in {
		if ok {
			out = append(out, i)
		}
	}
	if len(out) == 0 && !unknown {
		r.d.add(l.pos, "%q matches no %s", field, kind)
	}
	return out
}

func eventList(m *Machine, evs []int) string {
	if len(evs) == 1 {
		return "event " + strconv.Quote(m.Events[evs[0]].Name)
	}
	s := "events "
	for i, e := range evs {
		if i > 0 {
			s += ", "
		}
		s += strconv.Quote(m.Events[e].Name)
	}
	return s
}

func sortStrings(s []string) { sort.Strings(s) }

// anyBadOutcome reports whether one of the events carries an outcome
// enumeration that is unknown.
func (r *resolver) anyBadOutcome(m *Machine, events []int) bool {
	for _, e := range events {
		if r.badOutcome[eventKey{m, e}] {
			return true
		}
	}
	return false
}

// dedupeAnd returns e with the conjuncts of its && chain that repeat an
// earlier one (structurally) removed, double negations dropped.
func dedupeAnd(e *Expr) *Expr {
	var terms []*Expr
	var flatten func(x *Expr)
	flatten = func(x *Expr) {
		for x != nil && x.Op == OpNot && x.L != nil && x.L.Op == OpNot {
			x = x.L.L // !!a is a: a group's negated condition that was a negation
		}
		if x != nil && x.Op == OpAnd {
			flatten(x.L)
			flatten(x.R)
			return
		}
		for _, t := range terms {
			if sameExpr(t, x) {
				return
			}
		}
		terms = append(terms, x)
	}
	flatten(e)
	if len(terms) == 0 {
		return e
	}
	out := terms[0]
	for _, t := range terms[1:] {
		out = &Expr{Op: OpAnd, L: out, R: t, Kind: e.Kind, Enum: e.Enum}
	}
	return out
}

func sameExpr(a, b *Expr) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Op == b.Op && a.Value == b.Value && a.Var == b.Var && a.Kind == b.Kind && a.Enum == b.Enum && sameExpr(a.L, b.L) && sameExpr(a.R, b.R)
}
