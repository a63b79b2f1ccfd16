package gen

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Obligations: response properties over a machine's actions, events and
// configurations, resolved here and proven by verify's search (see Obligation).

var (
	eventTermRe = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9]*)\s*\((.*)\)$`)
	compTermRe  = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9]*)\.(.+)$`)
)

// machineObligations resolves the obligations of machine m.
func (r *resolver) machineObligations(p *parser, m *Machine, raws []*rawObligation) {
	for _, ro := range raws {
		resolve := func(t rawTerm, what string) (Term, bool) { return r.term(p, m, t, t.text, 0, what) }
		if o, ok := r.obligation(ro, resolve); ok {
			m.Obligations = append(m.Obligations, o)
		}
	}
}

// productObligations resolves the obligations of product pr, whose terms are
// written component.term.
func (r *resolver) productObligations(pr *Product, comps nameIndex, raws []*rawObligation) {
	for _, ro := range raws {
		resolve := func(t rawTerm, what string) (Term, bool) {
			sub := compTermRe.FindStringSubmatch(strings.TrimSpace(t.text))
			ci, known := -1, false
			if sub != nil {
				ci, known = comps[sub[1]]
			}
			if !known {
				r.d.add(t.pos, "obligation %q: %s term %q must name a component: component.term (components: %s)", ro.name, what, t.text, strings.Join(sortedNames(comps), ", "))
				return Term{}, false
			}
			m := r.pkg.Machines[pr.Components[ci].Machine]
			p := &parser{file: t.pos.File, d: r.d}
			tm, ok := r.term(p, m, t, sub[2], len(sub[1])+1, what)
			tm.Comp = ci
			return tm, ok
		}
		o, ok := r.obligation(ro, resolve)
		if !ok {
			continue
		}
		if _, err := pr.ObligationOwner(&o, func(c int) int { return pr.Components[c].Count }); err != nil {
			r.d.add(ro.pos, "%s", err)
			continue
		}
		pr.Obligations = append(pr.Obligations, o)
	}
}

// ObligationOwner returns the component whose instances each carry obligation
// o of the product, count giving each component's number of instances. The
// owner is the component with several instances whose terms raise or
// discharge the obligation (after, then), else the first component that does,
// else the first named; a before term or a condition of another component
// with several instances is met by any of its instances.
func (pr *Product) ObligationOwner(o *Obligation, count func(comp int) int) (int, error) {
	owner := -1
	for _, list := range [][]Term{o.After, o.Then} {
		for _, t := range list {
			switch {
			case owner < 0:
				owner = t.Comp
			case t.Comp == owner:
			case count(t.Comp) > 1 && count(owner) > 1:
				return -1, fmt.Errorf("obligation %q: after and then terms name components %q and %q, which both have several instances; at most one may (its instances each carry the obligation)", o.Name, pr.Components[owner].Name, pr.Components[t.Comp].Name)
			case count(t.Comp) > 1:
				owner = t.Comp
			}
		}
	}
	if owner < 0 && len(o.Before) > 0 {
		owner = o.Before[0].Comp
	}
	return owner, nil
}

func sortedNames(idx nameIndex) []string {
	var out []string
	for n := range idx {
		out = append(out, n)
	}
	sortStrings(out)
	return out
}

func (r *resolver) obligation(ro *rawObligation, resolve func(rawTerm, string) (Term, bool)) (Obligation, bool) {
	before := len(r.d.list)
	r.needDesc(ro.pos, "obligation "+strconv.Quote(ro.name), ro.desc)
	o := Obligation{Name: ro.name, Description: ro.desc, Pos: ro.pos}
	list := func(raws []rawTerm, what string) []Term {
		var out []Term
		for _, t := range raws {
			if tm, ok := resolve(t, what); ok {
				out = append(out, tm)
			}
		}
		return out
	}
	o.After = list(ro.after, "after")
	o.Then = list(ro.then, "then")
	o.Before = list(ro.before, "before")
	for _, b := range o.Before {
		for _, t := range o.Then {
			if sameTerm(b, t) {
				r.d.add(b.Pos, "obligation %q: %q is both in then and in before", ro.name, b.Text)
			}
		}
	}
	return o, len(r.d.list) == before
}

func sameTerm(a, b Term) bool {
	if a.Kind != b.Kind || a.Comp != b.Comp {
		return false
	}
	switch a.Kind {
	case TermAction:
		return a.Action == b.Action
	case TermEvent:
		if a.Event != b.Event {
			return false
		}
		if a.Outcomes == nil || b.Outcomes == nil {
			return true
		}
		for _, o := range a.Outcomes {
			if containsInt(b.Outcomes, o) {
				return true
			}
		}
		return false
	}
	return strings.Join(strings.Fields(a.Text), "") == strings.Join(strings.Fields(b.Text), "")
}

// term resolves text (t's text, or the part after "component." at offset col)
// against machine m: terminal, an action, an event, event(outcome, ...), a
// state, or a boolean expression over the state and the variables.
func (r *resolver) term(p *parser, m *Machine, t rawTerm, text string, col int, what string) (Term, bool) {
	text = strings.TrimSpace(text)
	tm := Term{Text: t.text, Pos: t.pos}
	events := eventIndex(m)
	if text == "terminal" {
		tm.Kind, tm.Cond = TermCond, terminalExpr(m)
		return tm, true
	}
	if strings.Count(text, "(") != strings.Count(text, ")") {
		r.d.add(t.pos, "%s: unbalanced parentheses in %q: want event(outcome, ...)", what, t.text)
		return tm, false
	}
	if sub := eventTermRe.FindStringSubmatch(text); sub != nil {
		e, ok := events[sub[1]]
		if !ok {
			r.d.add(t.pos, "%s: %q is not an event of machine %q", what, sub[1], m.Name)
			return tm, false
		}
		enum := m.Events[e].Outcome
		if enum < 0 && r.badOutcome[eventKey{m, e}] {
			return tm, false // its unknown enumeration is reported at the event
		}
		if enum < 0 {
			r.d.add(t.pos, "%s: event %q carries no outcome; write it without parentheses", what, sub[1])
			return tm, false
		}
		oe := r.pkg.Outcomes[enum]
		tm.Kind, tm.Event = TermEvent, e
		for _, name := range strings.Split(sub[2], ",") {
			name = strings.TrimSpace(name)
			found := false
			for i, v := range oe.Values {
				if v.Name == name {
					found = true
					if !containsInt(tm.Outcomes, i) {
						tm.Outcomes = append(tm.Outcomes, i)
					}
				}
			}
			if !found {
				r.d.add(t.pos, "%s: %q is not an outcome of %q (values: %s)", what, name, oe.Name, joinNamed(oe.Values))
				return tm, false
			}
		}
		return tm, true
	}
	if isIdent(text) {
		for i, a := range m.Actions {
			if a.Name == text {
				tm.Kind, tm.Action = TermAction, i
				return tm, true
			}
		}
		if e, ok := events[text]; ok {
			tm.Kind, tm.Event = TermEvent, e
			return tm, true
		}
		for i, s := range m.States {
			if s.Name == text {
				tm.Kind, tm.Cond = TermCond, stateIn(i)
				return tm, true
			}
		}
		isVar := false
		for _, v := range m.Vars {
			isVar = isVar || v.Name == text
		}
		if !isVar {
			r.d.add(t.pos, "%s: %q is not an action, event, state or variable of machine %q", what, text, m.Name)
			return tm, false
		}
	}
	node := *t.node
	node.Value = text
	node.Column += col
	e := p.parseExpr(&node, exprScope{m: m, allowState: true}, KindBool, -1)
	if e == nil {
		return tm, false
	}
	tm.Kind, tm.Cond = TermCond, e
	return tm, true
}

func stateIn(s int) *Expr {
	return &Expr{Op: OpEq, Kind: KindBool, Enum: -1,
		L: &Expr{Op: OpVar, Var: StateVar, Kind: KindState, Enum: -1},
		R: &Expr{Op: OpConst, Value: s, Kind: KindState, Enum: -1}}
}

// terminalExpr is "the machine is in a terminal state".
func terminalExpr(m *Machine) *Expr {
	var e *Expr
	for i, s := range m.States {
		if !s.Terminal {
			continue
		}
		if e == nil {
			e = stateIn(i)
		} else {
			e = &Expr{Op: OpOr, L: e, R: stateIn(i), Kind: KindBool, Enum: -1}
		}
	}
	if e == nil {
		e = &Expr{Op: OpConst, Value: 0, Kind: KindBool, Enum: -1}
	}
	return e
}

// MatchesEvent reports whether answering event with outcome is the moment t.
func (t *Term) MatchesEvent(event, outcome int) bool {
	return t.Kind == TermEvent && t.Event == event && (t.Outcomes == nil || containsInt(t.Outcomes, outcome))
}
