package verify

import (
	"fmt"
	"strings"

	"github.com/fsmkernel/fsmkernel/gen"
)

// Obligations (gen.Obligation) are monitored with one bit per instance of the
// component that carries them, above the bits of the instance's action
// monitors. A machine's obligations are proven on the machine alone, where
// every event may arrive at any time: a product only narrows which events an
// instance hears, so they hold in every product too. A product's obligations,
// whose terms name several components, are proven on the product; their bit
// lives in each instance of the one component with several instances (or of
// the first component named), and terms of the other components refer to their
// single instance.

// ObligationProperty is the property name under which obligation name is
// reported, proven or violated.
func ObligationProperty(name string) string { return "obligation " + name }

// Flags of a term's moment in oblMon's tables.
const (
	fThen uint8 = 1 << iota
	fBefore
	fAfter
)

type oblMon struct {
	o     *gen.Obligation
	prop  string
	owner int   // component whose instances carry the bit
	bit   int   // position in the owner's monitor, in units of its radix
	comps []int // the components the terms name
	// ev and act hold the flags of each component's cells and actions.
	ev, act [][]uint8
	conds   bool // some term is a condition
}

// setupObligations assigns the monitor bits (on the instances of the owner,
// gen.Product.ObligationOwner); it fails when they do not fit.
func (ck *checker) setupObligations(obls []gen.Obligation) error {
	ck.termEvent = make([][]bool, len(ck.pr.Components))
	ck.oblComp = make([]bool, len(ck.pr.Components))
	for ci, c := range ck.pr.Components {
		ck.termEvent[ci] = make([]bool, len(ck.pkg.Machines[c.Machine].Events))
	}
	used := make([]int, len(ck.pr.Components)) // obligation bits per owner component
	for i := range obls {
		o := &obls[i]
		om := oblMon{o: o, prop: ObligationProperty(o.Name), owner: -1,
			ev: make([][]uint8, len(ck.pr.Components)), act: make([][]uint8, len(ck.pr.Components))}
		for li, list := range [][]gen.Term{o.Then, o.Before, o.After} {
			flag := []uint8{fThen, fBefore, fAfter}[li]
			for _, t := range list {
				c := ck.insts[ck.groups[t.Comp][0]].c
				if !containsInt(om.comps, t.Comp) {
					om.comps = append(om.comps, t.Comp)
					om.ev[t.Comp] = make([]uint8, c.ncells)
					om.act[t.Comp] = make([]uint8, len(c.m.Actions))
				}
				switch t.Kind {
				case gen.TermEvent:
					ck.termEvent[t.Comp][t.Event] = true
					for o := 0; o < c.m.NumOutcomes(ck.pkg, t.Event); o++ {
						if t.MatchesEvent(t.Event, o) {
							om.ev[t.Comp][c.cellBase[t.Event]+o] |= flag
						}
					}
				case gen.TermAction:
					om.act[t.Comp][t.Action] |= flag
				case gen.TermCond:
					om.conds = true
				}
			}
		}
		for _, c := range om.comps {
			ck.oblComp[c] = true
		}
		owner, err := ck.pr.ObligationOwner(o, func(c int) int { return len(ck.groups[c]) })
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		om.owner = owner
		c := ck.insts[ck.groups[om.owner][0]].c
		om.bit = c.lowBits() + used[om.owner]
		used[om.owner]++
		if span := int64(c.radix) << om.bit; span >= 1<<30 {
			return fmt.Errorf("verify: the monitors of machine %q do not fit in 31 bits with obligation %q", c.m.Name, o.Name)
		}
		ck.obls = append(ck.obls, om)
	}
	return nil
}

// lowBits is the number of order bits of the action monitors.
func (c *compiled) lowBits() int {
	return len(c.afterActs) + len(c.notAfterEvents) + len(c.notAfterActs)
}

func (ck *checker) oblBit(st []int32, inst int, om *oblMon) bool {
	c := ck.insts[inst].c
	return (int(st[2*inst+1])/c.radix)>>om.bit&1 != 0
}

func (ck *checker) setOblBit(st []int32, inst int, om *oblMon, on bool) {
	c := ck.insts[inst].c
	mon := int(st[2*inst+1])
	has := (mon/c.radix)>>om.bit&1 != 0
	switch {
	case on && !has:
		mon += c.radix << om.bit
	case !on && has:
		mon -= c.radix << om.bit
	}
	st[2*inst+1] = int32(mon)
}

// owners returns the instances whose bit of om a transition of instance i
// concerns.
func (ck *checker) owners(om *oblMon, i int) []int {
	comp := ck.insts[i].comp
	if om.ev[comp] == nil {
		return nil
	}
	if comp == om.owner {
		return ck.groups[comp][i-ck.groups[comp][0] : i-ck.groups[comp][0]+1]
	}
	return ck.groups[om.owner]
}

// condHolds says whether the condition term t holds for owner instance k: on
// k itself, or on any instance of the term's component.
func (ck *checker) condHolds(st []int32, om *oblMon, t *gen.Term, k int) bool {
	insts := ck.groups[t.Comp]
	if t.Comp == om.owner {
		insts = []int{k}
	}
	for _, i := range insts {
		c := ck.insts[i].c
		s := c.sp.Decode(int(st[2*i]), c.vals)
		if t.Cond.Eval(s, c.vals) != 0 {
			return true
		}
	}
	return false
}

// oblConf is the moment of a configuration for owner k: discharge, raise,
// then the deadline. It returns the violated deadline, or nil.
func (ck *checker) oblConf(st []int32, om *oblMon, k int) *gen.Term {
	if !om.conds {
		return nil
	}
	p := ck.oblBit(st, k, om)
	holds := func(list []gen.Term) *gen.Term {
		for i := range list {
			t := &list[i]
			if t.Kind == gen.TermCond && ck.condHolds(st, om, t, k) {
				return t
			}
		}
		return nil
	}
	if p && holds(om.o.Then) != nil {
		p = false
	}
	if holds(om.o.After) != nil {
		p = true
	}
	ck.setOblBit(st, k, om, p)
	if p {
		return holds(om.o.Before)
	}
	return nil
}

// oblOccur applies the flags of one event or action moment to p: discharge,
// the deadline, then raise. bad reports the deadline.
func oblOccur(p bool, f uint8) (next, bad bool) {
	if p && f&fThen != 0 {
		p = false
	}
	bad = p && f&fBefore != 0
	if f&fAfter != 0 {
		p = true
	}
	return p, bad
}

// beforeTerm finds the before term that matches a moment, for the message.
func beforeTerm(o *gen.Obligation, comp int, match func(t *gen.Term) bool) string {
	for i := range o.Before {
		if t := &o.Before[i]; t.Comp == comp && match(t) {
			return t.Text
		}
	}
	return "?"
}

// initialObligations raises the obligations of an initial state (those with no
// after terms are raised at creation) and reports the first one violated there.
func (ck *checker) initialObligations(st []int32) (*oblMon, *gen.Term) {
	var vo *oblMon
	var vt *gen.Term
	for oi := range ck.obls {
		om := &ck.obls[oi]
		for _, k := range ck.groups[om.owner] {
			ck.setOblBit(st, k, om, len(om.o.After) == 0)
			if t := ck.oblConf(st, om, k); t != nil && vo == nil {
				vo, vt = om, t
			}
		}
	}
	return vo, vt
}

// obligate advances the obligations over the transition of instance d.inst
// from configuration conf by row (already applied to st). It returns false
// after recording a violation. A terminal configuration's late answers are no
// moments: its run has ended.
func (ck *checker) obligate(s int32, st []int32, d delivery, conf int, row *gen.Row, l label, what func() string) bool {
	in := ck.insts[d.inst]
	if !ck.oblComp[in.comp] || in.c.terminal(conf) {
		return true
	}
	m := in.c.m
	cell := in.c.cellBase[d.event] + d.outcome
	for oi := range ck.obls {
		om := &ck.obls[oi]
		for _, k := range ck.owners(om, d.inst) {
			p := ck.oblBit(st, k, om)
			var bad bool
			moment, term := "", ""
			if p, bad = oblOccur(p, om.ev[in.comp][cell]); bad {
				moment = "event " + ck.pkg.FormatStep(m, d.event, d.outcome)
				term = beforeTerm(om.o, in.comp, func(t *gen.Term) bool { return t.MatchesEvent(d.event, d.outcome) })
			}
			if !bad && row.Kind == gen.RowTransition {
				for _, a := range row.Do {
					if p, bad = oblOccur(p, om.act[in.comp][a]); bad {
						moment = "action " + m.Actions[a].Name
						term = beforeTerm(om.o, in.comp, func(t *gen.Term) bool { return t.Kind == gen.TermAction && t.Action == a })
						break
					}
				}
			}
			ck.setOblBit(st, k, om, p)
			if !bad {
				if t := ck.oblConf(st, om, k); t != nil {
					bad, moment, term = true, "the configuration reached", t.Text
				}
			}
			if bad {
				who := strings.TrimSuffix(ck.instName(k), ".")
				if who != "" {
					who = " for " + who
				}
				ck.violate(om.prop, s, &l, "%s%s: %s while it is pending (%s, row %s): %s", oblHeader(om.o), who, term, moment, posLine(row.Pos), what())
				return false
			}
		}
	}
	return true
}

// oblHeader names an obligation with its position and what it says.
func oblHeader(o *gen.Obligation) string {
	texts := func(ts []gen.Term) string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Text)
		}
		return strings.Join(out, " or ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "obligation %q (%s): ", o.Name, posLine(o.Pos))
	if len(o.After) == 0 {
		b.WriteString("from creation, ")
	} else {
		fmt.Fprintf(&b, "after %s, ", texts(o.After))
	}
	if len(o.Then) == 0 {
		fmt.Fprintf(&b, "never %s", texts(o.Before))
	} else {
		fmt.Fprintf(&b, "%s before %s", texts(o.Then), texts(o.Before))
	}
	return b.String()
}

func posLine(p gen.Pos) string {
	if p.Col > 0 {
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}
