package gen

import (
	"regexp"
	"slices"
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

// maxGroups bounds the conditional action groups with a condition of one
// row: a row with k of them expands to 2^k rows.
const maxGroups = 3

// bucket is a set of triggers one plain row answers: the events on, each with
// the outcome values outcomes (nil: every outcome of each event). A row whose
// on list holds event(outcome) pairs answers several buckets.
type bucket struct {
	on       []int
	outcomes []int
}

// cell is one trigger: an event and one of its outcome values (0 for an event
// without outcomes).
type cell struct{ e, o int }

// rows resolves one row as written into plain rows. Its on list may name
// events with the row's outcome key and event(outcome) pairs, so it answers
// one or more buckets of triggers; each bucket is one plain row. Its
// conditional action groups (SCXML's <if> in a transition's executable
// content) expand into the 2^k rows of the plain format: one per combination
// of the groups' conditions, guarded by the row's own guard and every group's
// condition or its negation, performing the actions of the groups that hold
// at their places. A group with an on list applies only to the triggers it
// names (SCXML's test of _event.name): the row's triggers are partitioned by
// the groups that apply to them, and each part is expanded with those groups
// alone. Everything after the resolver sees plain rows. Expanded rows keep the
// row's position.
func (r *resolver) rows(p *parser, m *Machine, raw *rawRow, states, events, actions, vars nameIndex) []Row {
	buckets, trigOK := r.triggers(m, raw, events)
	if len(raw.groups) == 0 {
		rr, ok := r.row(p, m, raw, states, actions, vars)
		if !ok || !trigOK {
			return nil
		}
		return withBuckets(rr, buckets)
	}
	withCond := 0
	for _, g := range raw.groups {
		if g.when != nil {
			withCond++
			if withCond > maxGroups {
				n := 0
				for _, g := range raw.groups {
					if g.when != nil {
						n++
					}
				}
				r.d.add(g.pos, "row has %d conditional action groups; at most %d (a row expands to 2^k rows): split the row or combine conditions", n, maxGroups)
				return nil
			}
		}
	}
	// Each condition is checked alone, so that its diagnostics point into it;
	// the row's own guard is checked (and reported) by row.
	okConds := true
	conds := make([]*Expr, len(raw.groups))
	for i, g := range raw.groups {
		if g.when != nil {
			if conds[i] = p.parseExpr(g.when, exprScope{m: m}, KindBool, -1); conds[i] == nil {
				okConds = false
			}
		}
	}
	var rowCells []cell
	if trigOK {
		rowCells = r.cells(m, buckets)
	}
	filters := make([]map[cell]bool, len(raw.groups))
	for i, g := range raw.groups {
		if g.on.set && trigOK {
			var ok bool
			if filters[i], ok = r.groupFilter(m, g, rowCells, events); !ok {
				okConds = false
			}
		}
	}
	var guard *Expr
	if raw.when != nil {
		guard = (&parser{file: p.file, d: &diags{}}).parseExpr(raw.when, exprScope{m: m}, KindBool, -1)
	}
	ownOK := raw.when == nil || guard != nil
	// The rest of the row is reported as if every group that applies to a
	// part of its triggers held (groups for other triggers may set the same
	// variable); the combinations differ from it only in guards and in
	// actions and assignments it has resolved already, and add no diagnostic
	// of their own. Repeated diagnostics are reported once.
	reportAll := func(groups []rawGroup) bool {
		all := expandRow(raw, groups, nil)[0].row
		all.when = raw.when
		_, ok := r.row(p, m, all, states, actions, vars)
		return ok
	}
	if !okConds || !ownOK || !trigOK {
		reportAll(raw.groups)
		return nil
	}
	// Each part of the triggers, with the groups that apply to it.
	type partGroups struct {
		buckets []bucket
		groups  []rawGroup
		conds   []*Expr
	}
	var parts []partGroups
	ok := true
	for _, pt := range partition(m, r.pkg, buckets, rowCells, filters) {
		pg := partGroups{buckets: pt.buckets}
		for i, g := range raw.groups {
			if filters[i] == nil || pt.groups[i] {
				pg.groups = append(pg.groups, g)
				pg.conds = append(pg.conds, conds[i])
			}
		}
		ok = reportAll(pg.groups) && ok
		parts = append(parts, pg)
	}
	if !ok {
		return nil
	}
	var out []Row
	saved := r.d.list
	for _, pg := range parts {
		var rows []Row
		for _, e := range expandRow(raw, pg.groups, pg.conds) {
			if rr, ok := r.row(p, m, e.row, states, actions, vars); ok {
				rr.Guard = simplify(m, guard, e.terms)
				rows = append(rows, withBuckets(rr, pg.buckets)...)
			}
		}
		// Groups whose conditions exclude each other (readArmed && autoRead
		// and readArmed && !autoRead) make combinations no configuration
		// satisfies: they are dropped, so the machine has no row that can
		// never fire.
		var live []Row
		for _, rr := range rows {
			if satisfiable(m, rr.Guard) {
				live = append(live, rr)
			}
		}
		if len(live) == 0 {
			live = rows // the row's own guard is never true: the analysis says so
		}
		out = append(out, live...)
	}
	r.d.list = saved
	return out
}

// withBuckets returns row once for each bucket of triggers.
func withBuckets(row Row, buckets []bucket) []Row {
	out := make([]Row, len(buckets))
	for i, b := range buckets {
		out[i] = row
		out[i].On, out[i].Outcomes = b.on, b.outcomes
	}
	return out
}

// triggers resolves a row's on list: its plain events answer the row's
// outcome key, in one bucket; its event(outcome) pairs answer the outcomes
// they name, events with the same outcomes sharing a bucket.
func (r *resolver) triggers(m *Machine, raw *rawRow, events nameIndex) ([]bucket, bool) {
	before := len(r.d.list)
	var out []bucket
	how := map[int]string{} // event -> "" (plain) or the pair that names it
	if raw.on.any || len(raw.on.names) > 0 || len(raw.pairs) == 0 {
		on := r.set(raw.on, raw.exceptOn, events, len(m.Events), "event", "on", "exceptOn")
		out = append(out, bucket{on: on, outcomes: r.outcomeKey(m, raw, on)})
		for _, e := range on {
			how[e] = ""
		}
	} else {
		if raw.exceptOn.set {
			r.d.add(raw.exceptOn.pos, "%q is only allowed with %s: \"*\"", "exceptOn", "on")
		}
		if raw.outcome.set {
			r.d.add(raw.outcome.pos, "row names outcomes in \"outcome\", but every event of \"on\" names its own, as event(outcome): drop \"outcome\"")
		}
	}
	plain := len(out)
	bad := false
	for _, pr := range raw.pairs {
		e, outs, ok := r.pair(m, pr, events)
		if !ok {
			bad = true
			continue
		}
		if prev, dup := how[e]; dup {
			if prev == "" {
				r.d.add(pr.pos, "event %q is in \"on\" both plain, answering the row's outcome, and as %s: name its outcomes once", pr.name, pr.text)
			} else {
				r.d.add(pr.pos, "event %q is in \"on\" twice, as %s and as %s: name its outcomes in one %s(...)", pr.name, prev, pr.text, pr.name)
			}
			continue
		}
		how[e] = pr.text
		joined := false
		for i := plain; i < len(out); i++ {
			if m.Events[out[i].on[0]].Outcome == m.Events[e].Outcome && slices.Equal(out[i].outcomes, outs) {
				out[i].on = append(out[i].on, e)
				slices.Sort(out[i].on)
				joined = true
				break
			}
		}
		if !joined {
			out = append(out, bucket{on: []int{e}, outcomes: outs})
		}
	}
	return out, len(r.d.list) == before && !bad
}

// pair resolves event(outcome, ...) into the event and its sorted outcomes.
func (r *resolver) pair(m *Machine, pr rawPair, events nameIndex) (int, []int, bool) {
	if pr.bad {
		return -1, nil, false // reported by the parser
	}
	e, ok := events[pr.name]
	if !ok {
		if pr.name != "" {
			r.d.add(pr.pos, "unknown event %q%s", pr.name, events.suggest(pr.name))
		}
		return -1, nil, false
	}
	enum := m.Events[e].Outcome
	if enum < 0 {
		if !r.badOutcome[eventKey{m, e}] {
			r.d.add(pr.pos, "event %q carries no outcome; write it without parentheses", pr.name)
		}
		return -1, nil, false
	}
	oe := r.pkg.Outcomes[enum]
	var outs []int
	ok = true
	for _, o := range pr.outcomes {
		i := slices.IndexFunc(oe.Values, func(v Named) bool { return v.Name == o.name })
		switch {
		case i < 0:
			r.d.add(o.pos, "%q is not an outcome of %q (values: %s)", o.name, oe.Name, joinNamed(oe.Values))
			ok = false
		case slices.Contains(outs, i):
			r.d.add(o.pos, "outcome %q listed twice in %s", o.name, pr.text)
			ok = false
		default:
			outs = append(outs, i)
		}
	}
	slices.Sort(outs)
	return e, outs, ok && len(outs) > 0
}

// outcomeKey resolves the outcome key of a row whose plain events are on: the
// events must agree on the enumeration they carry.
func (r *resolver) outcomeKey(m *Machine, raw *rawRow, on []int) []int {
	enum := -2
	for _, e := range on {
		if enum == -2 {
			enum = m.Events[e].Outcome
		} else if enum != m.Events[e].Outcome {
			enum = -3
		}
	}
	switch {
	case !raw.outcome.set:
		if enum >= 0 {
			r.d.add(raw.pos, "row on %s must say which outcomes it answers: \"outcome: <value>\", a list, or \"*\"", eventList(m, on))
		}
	case raw.outcome.any:
	case enum == -3:
		r.d.add(raw.outcome.pos, "row names outcomes, but its events carry different outcome enumerations; split the row")
	case enum == -1 && r.anyBadOutcome(m, on):
		// One root cause, one diagnostic: the event's unknown enumeration.
	case enum == -1:
		r.d.add(raw.outcome.pos, "row names outcomes, but %s carries none", eventList(m, on))
	case enum >= 0:
		oe := r.pkg.Outcomes[enum]
		idx := nameIndex{}
		for i, v := range oe.Values {
			idx[v.Name] = i
		}
		outs := r.set(raw.outcome, rawList{}, idx, len(oe.Values), "outcome", "outcome", "")
		for _, nm := range raw.outcome.names {
			if _, ok := idx[nm.name]; !ok {
				r.d.add(nm.pos, "%q is not an outcome of %q (values: %s)", nm.name, oe.Name, joinNamed(oe.Values))
			}
		}
		return outs
	}
	return nil
}

// cells lists the triggers of buckets, in their order.
func (r *resolver) cells(m *Machine, buckets []bucket) []cell {
	var out []cell
	for _, b := range buckets {
		for _, e := range b.on {
			if b.outcomes == nil {
				for o := 0; o < m.NumOutcomes(r.pkg, e); o++ {
					out = append(out, cell{e, o})
				}
				continue
			}
			for _, o := range b.outcomes {
				out = append(out, cell{e, o})
			}
		}
	}
	return out
}

// groupFilter resolves the on list of a conditional action group into the
// triggers of the row it names: an event stands for every outcome of it the
// row answers, event(outcome, ...) for those outcomes.
func (r *resolver) groupFilter(m *Machine, g rawGroup, rowCells []cell, events nameIndex) (map[cell]bool, bool) {
	before := len(r.d.list)
	in := map[cell]bool{}
	if g.on.any {
		return in, false // "*": reported by the parser
	}
	if len(g.on.names) == 0 && len(g.pairs) == 0 {
		r.d.add(g.on.pos, "conditional actions: the on list is empty; name the triggers the group applies to")
		return in, false
	}
	named := map[int]bool{}
	twice := func(n rawName, e int) bool {
		if named[e] {
			r.d.add(n.pos, "event %q listed twice in the \"on\" of conditional actions", n.name)
			return true
		}
		named[e] = true
		return false
	}
	for _, n := range g.on.names {
		e, ok := events[n.name]
		if !ok {
			if n.name != "" {
				r.d.add(n.pos, "unknown event %q%s", n.name, events.suggest(n.name))
			}
			continue
		}
		if twice(n, e) {
			continue
		}
		found := false
		for _, c := range rowCells {
			if c.e == e {
				in[c], found = true, true
			}
		}
		if !found {
			r.d.add(n.pos, "conditional actions: on names %q, which the row does not answer", n.name)
		}
	}
	bad := false
	for _, pr := range g.pairs {
		e, outs, ok := r.pair(m, pr, events)
		if !ok {
			bad = true
			continue
		}
		if twice(pr.rawName, e) {
			continue
		}
		for _, o := range outs {
			if !slices.Contains(rowCells, cell{e, o}) {
				r.d.add(pr.pos, "conditional actions: on names %s, which the row does not answer", r.pkg.FormatStep(m, e, o))
				continue
			}
			in[cell{e, o}] = true
		}
	}
	if len(r.d.list) == before && !bad && len(in) == len(rowCells) {
		r.d.add(g.on.pos, "conditional actions: on names every event the row answers; drop it")
	}
	return in, len(r.d.list) == before && !bad
}

// part is a set of a row's triggers to which the same groups with an on
// list apply.
type part struct {
	buckets []bucket
	groups  []bool // indexed like the row's groups: the filtered ones that apply
}

// partition splits a row's triggers by the groups whose on lists name them,
// in the order of the row's triggers. Without such groups it is one part, the
// row's own buckets.
func partition(m *Machine, pkg *Package, buckets []bucket, rowCells []cell, filters []map[cell]bool) []part {
	if !slices.ContainsFunc(filters, func(f map[cell]bool) bool { return f != nil }) {
		return []part{{buckets: buckets, groups: make([]bool, len(filters))}}
	}
	sig := func(c cell) string {
		b := make([]byte, len(filters))
		for i, f := range filters {
			b[i] = '0'
			if f[c] {
				b[i] = '1'
			}
		}
		return string(b)
	}
	var order []string
	cellsOf := map[string][]cell{}
	for _, c := range rowCells {
		k := sig(c)
		if _, ok := cellsOf[k]; !ok {
			order = append(order, k)
		}
		cellsOf[k] = append(cellsOf[k], c)
	}
	all := func(e int) bool { // the row answers every outcome of e
		for _, b := range buckets {
			if slices.Contains(b.on, e) {
				return b.outcomes == nil
			}
		}
		return false
	}
	var out []part
	for _, k := range order {
		pt := part{groups: make([]bool, len(filters))}
		for i := range filters {
			pt.groups[i] = k[i] == '1'
		}
		// The outcomes of each event in this part, then events with the
		// same outcomes in one bucket.
		var evs []int
		outs := map[int][]int{}
		for _, c := range cellsOf[k] {
			if _, ok := outs[c.e]; !ok {
				evs = append(evs, c.e)
			}
			outs[c.e] = append(outs[c.e], c.o)
		}
		for _, e := range evs {
			o := outs[e]
			if all(e) && len(o) == m.NumOutcomes(pkg, e) {
				o = nil
			}
			joined := false
			for i := range pt.buckets {
				b := &pt.buckets[i]
				if slices.Equal(b.outcomes, o) && (o == nil || m.Events[b.on[0]].Outcome == m.Events[e].Outcome) {
					b.on = append(b.on, e)
					slices.Sort(b.on)
					joined = true
					break
				}
			}
			if !joined {
				pt.buckets = append(pt.buckets, bucket{on: []int{e}, outcomes: o})
			}
		}
		out = append(out, pt)
	}
	return out
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

// expanded is one combination of a row's groups: the plain row, and the
// conditions of its guard that the groups add (each group's condition or its
// negation).
type expanded struct {
	row   *rawRow
	terms []*Expr
}

// expandRow returns the 2^k plain rows of a row performing groups, k of which
// have a condition (the others always hold), the combination where every
// group holds first (the order in which such rows are written by hand). conds
// holds the typed conditions, indexed like groups, or is nil when the rows
// are only reported.
func expandRow(raw *rawRow, groups []rawGroup, conds []*Expr) []expanded {
	var cond []int // the groups with a condition
	for i, g := range groups {
		if g.when != nil {
			cond = append(cond, i)
		}
	}
	k := len(cond)
	var out []expanded
	for mask := 0; mask < 1<<k; mask++ {
		holds := func(i int) bool { // group i of groups
			j := slices.Index(cond, i)
			return j < 0 || mask&(1<<(k-1-j)) == 0
		}
		e := *raw
		e.groups = nil
		e.do = nil
		e.set = append([]rawSet(nil), raw.set...)
		at := 0
		for i, g := range groups {
			e.do = append(e.do, raw.do[at:g.at]...)
			at = g.at
			if holds(i) {
				e.do = append(e.do, g.do...)
				e.set = append(e.set, g.set...) // a variable the row sets too is "set twice"
			}
		}
		e.do = append(e.do, raw.do[at:]...)
		var text []string
		var terms []*Expr
		if raw.when != nil {
			text = append(text, "("+raw.when.Value+")")
		}
		for _, i := range cond {
			c := groups[i].when.Value
			var x *Expr
			if conds != nil {
				x = conds[i]
			}
			if holds(i) {
				text = append(text, "("+c+")")
			} else {
				text = append(text, "!("+c+")")
				if x != nil {
					x = &Expr{Op: OpNot, L: x, Kind: KindBool, Enum: -1}
				}
			}
			terms = append(terms, x)
		}
		if k > 0 {
			when := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.ReplaceAll(strings.Join(text, " && "), "\n", " "), Line: raw.pos.Line, Column: raw.pos.Col}
			if raw.when != nil {
				when.Line, when.Column = raw.when.Line, raw.when.Column
			}
			e.when = when
		}
		out = append(out, expanded{row: &e, terms: terms})
	}
	return out
}

// simplify returns the guard of an expanded row, the conjunction of the
// row's own guard and the terms its groups add, without the conjuncts the
// rest of it implies: with the groups readArmed && autoRead and readArmed &&
// !autoRead, the row where the first holds is not also tested for the
// negation of the second, and a row guarded output != idle whose group holds
// for output == flushing is guarded output == flushing. Negated terms are
// dropped first, then the groups' conditions, then the conjuncts of the row's
// own guard. Each is dropped only when the remaining guard implies it over
// the variables' domains, so the guard is the same function, written as the
// row would be by hand.
func simplify(m *Machine, guard *Expr, terms []*Expr) *Expr {
	var all []*Expr // in the order of the text: the guard's conjuncts, then the terms
	var flatten func(x *Expr)
	flatten = func(x *Expr) {
		if x != nil && x.Op == OpAnd {
			flatten(x.L)
			flatten(x.R)
			return
		}
		all = append(all, x)
	}
	flatten(guard)
	if guard == nil {
		all = nil
	}
	own := len(all)
	all = append(all, terms...)
	var order []int
	for i := own; i < len(all); i++ {
		if all[i].Op == OpNot {
			order = append(order, i)
		}
	}
	for i := own; i < len(all); i++ {
		if all[i].Op != OpNot {
			order = append(order, i)
		}
	}
	for i := range own {
		order = append(order, i)
	}
	drop := make([]bool, len(all))
	conj := func(skip int) *Expr {
		var x *Expr
		for i, t := range all {
			if i != skip && !drop[i] {
				x = andExpr(x, t)
			}
		}
		return x
	}
	implies := func(rest, x *Expr) bool { return !satisfiable(m, andExpr(rest, notExpr(x))) }
	for _, i := range order {
		if implies(conj(i), all[i]) {
			drop[i] = true
		}
	}
	// What the rest decides inside a kept term is left out of it too:
	// (!delivered || autoRead) beside delivered is autoRead.
	for i := own; i < len(all); i++ {
		if !drop[i] {
			all[i] = residual(all[i], conj(i), implies)
		}
	}
	return dedupeAnd(conj(-1))
}

// residual returns term t, beside the conjunction rest, without the parts of
// it rest decides: x || y where rest implies !x is y, !(x && y) where rest
// implies x is !y, and a negated comparison is the opposite comparison.
func residual(t, rest *Expr, implies func(rest, x *Expr) bool) *Expr {
	switch {
	case t.Op == OpNot && t.L.Op == OpNot:
		return residual(t.L.L, rest, implies)
	case t.Op == OpNot && isComparison(t.L.Op):
		c := *t.L
		c.Op = opposite[t.L.Op]
		return &c
	case t.Op == OpNot && t.L.Op == OpAnd && implies(rest, t.L.L):
		return residual(notExpr(t.L.R), rest, implies)
	case t.Op == OpNot && t.L.Op == OpAnd && implies(rest, t.L.R):
		return residual(notExpr(t.L.L), rest, implies)
	case t.Op == OpOr && implies(rest, notExpr(t.L)):
		return residual(t.R, rest, implies)
	case t.Op == OpOr && implies(rest, notExpr(t.R)):
		return residual(t.L, rest, implies)
	}
	return t
}

// opposite maps a comparison to its negation.
var opposite = map[Op]Op{OpEq: OpNe, OpNe: OpEq, OpLt: OpGe, OpGe: OpLt, OpLe: OpGt, OpGt: OpLe}

func isComparison(op Op) bool { _, ok := opposite[op]; return ok }

func notExpr(x *Expr) *Expr { return &Expr{Op: OpNot, L: x, Kind: KindBool, Enum: -1} }

// andExpr returns a && b, where a nil operand is true.
func andExpr(a, b *Expr) *Expr {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return &Expr{Op: OpAnd, L: a, R: b, Kind: KindBool, Enum: -1}
}

// row resolves a plain row but for its triggers (see triggers); the bool
// reports whether it added no diagnostic.
func (r *resolver) row(p *parser, m *Machine, raw *rawRow, states, actions, vars nameIndex) (Row, bool) {
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
