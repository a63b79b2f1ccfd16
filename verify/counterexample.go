package verify

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fsmkernel/fsmkernel/gen"
)

// counterexample is a violation's trace as the search took it: the initial
// configuration it starts from and the deliveries after it, so that it can be
// written as a behaviour script and replayed (Violation.Script, RunScript).
type counterexample struct {
	pkg   *gen.Package
	pr    *gen.Product
	alone bool    // pr is a machine on its own
	start []int32 // the initial state: configuration and monitors per instance
	steps []label
	// invariant names the invariant that does not hold (PropInvariants).
	invariant string
	// counts are a product's instances per component; the steps of a
	// product's trace name instances by identity (identify).
	counts []int
}

// counterexample returns the trace from an initial state to state s.
func (ck *checker) counterexample(s int32) *counterexample {
	var steps []label
	cur := s
	for ; ck.parent[cur] >= 0; cur = ck.parent[cur] {
		steps = append(steps, ck.label[cur])
	}
	for i, j := 0, len(steps)-1; i < j; i, j = i+1, j-1 {
		steps[i], steps[j] = steps[j], steps[i]
	}
	return &counterexample{pkg: ck.pkg, pr: ck.pr, alone: ck.alone, start: append([]int32(nil), ck.stateAt(cur)...), steps: steps}
}

// holdsArg returns what "want NAME holds ..." says of property prop (with the
// invariant named for PropInvariants), or "" when a script cannot state it.
func holdsArg(prop, invariant string) string {
	if name, ok := strings.CutPrefix(prop, ObligationProperty("")); ok {
		return "obligation " + name
	}
	switch prop {
	case PropInvariants:
		if invariant == "" {
			return "invariants"
		}
		return "invariant " + invariant
	case PropTotal:
		return "total"
	case PropDeterministic:
		return "deterministic"
	case PropInRange:
		return "inRange"
	case PropMultiplicity:
		return "multiplicities"
	case PropOrder:
		return "order"
	case PropTerminalQuiet:
		return "terminalQuiet"
	case PropNoDeadlock:
		return "noDeadlock"
	case PropCanTerminate:
		return "terminalReachable"
	case PropSyncAccepted:
		return "syncAccepted"
	case PropSyncBounded:
		return "syncBounded"
	case PropOutlives:
		return "outlives"
	}
	return ""
}

// Script writes the violation as a behaviour script (the format RunScript
// runs): a "new" line creating the machine, or the product with its instance
// counts, with the option values the trace starts from, one "step" line per
// step of the trace, and a last line "want NAME holds PROPERTY" requiring the
// violated property. name is the file name the script is meant for, without
// ".txt": the machine or product and the property, as in
// breaker-invariant-countsOnlyWhenClosed or channel-obligation-writesSettle.
//
// Steps deliver each event as the checker does, whatever the table answers (a
// rejection included), so the script fails on the tables the violation was
// found in, at its last line, and passes on all tables on which the checker
// proves the property, as long as the names it uses (machines, components,
// options, events, outcomes, the invariant or obligation) still exist. The
// instances of a product keep their names from "new" on: a trace's instance
// numbers, positions in the order the search sorts symmetric instances into,
// are translated.
//
// ok is false when the violation does not come from CheckMachine or
// CheckProduct.
func (v Violation) Script() (name string, script []byte, ok bool) {
	cex := v.cex
	if cex == nil {
		return "", nil, false
	}
	holds := holdsArg(v.Property, cex.invariant)
	if holds == "" {
		return "", nil, false
	}
	pkg := cex.pkg
	what, id := "product "+cex.pr.Name, cex.pr.Name
	if cex.alone {
		what, id = "machine "+cex.pr.Name, pkg.Machines[cex.pr.Components[0].Machine].Name
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Counterexample: %s violates %s.\n", what, v.Property)
	fmt.Fprintf(&b, "# %s\n", oneLine(v.Message))
	b.WriteString("# fsmgen check wrote this script from the shortest trace that breaks it:\n")
	fmt.Fprintf(&b, "#   %s\n", oneLine(strings.Join(v.Trace, " -> ")))
	b.WriteString("# Each step delivers its event as the model checker does, whatever the table\n")
	b.WriteString("# answers (a rejection included). The last line fails until the table is fixed,\n")
	b.WriteString("# and passes once the property holds.\n")
	if !cex.alone {
		b.WriteString("# The trace numbers instances by their place in the order the search keeps\n")
		b.WriteString("# symmetric instances in; the steps name each by the place it starts in.\n")
	}
	fmt.Fprintf(&b, "new %s %s", id, id)
	// Instance i of the trace, its machine and its name in the script.
	type inst struct {
		m      *gen.Machine
		name   string
		prefix string // "" for a machine, "name." in a product
		fixed  []int
	}
	var insts []inst
	if cex.alone {
		insts = []inst{{m: pkg.Machines[cex.pr.Components[0].Machine]}}
	} else {
		for ci, c := range cex.pr.Components {
			fmt.Fprintf(&b, " %s=%d", c.Name, cex.counts[ci])
		}
		for ci, c := range cex.pr.Components {
			for k := 0; k < cex.counts[ci]; k++ {
				name := c.Name
				if cex.counts[ci] > 1 {
					name += "[" + strconv.Itoa(k) + "]"
				}
				insts = append(insts, inst{m: pkg.Machines[c.Machine], name: name, prefix: name + ".", fixed: c.Options})
			}
		}
	}
	for i, x := range insts {
		vals := make([]int, len(x.m.Vars))
		sp, err := gen.NewSpace(x.m)
		if err != nil {
			return "", nil, false
		}
		sp.Decode(int(cex.start[2*i]), vals)
		for vi, v := range x.m.Vars {
			if v.Option && (x.fixed == nil || x.fixed[vi] < 0) {
				fmt.Fprintf(&b, " %s%s=%s", x.prefix, v.Name, formatVar(&v, vals[vi]))
			}
		}
	}
	b.WriteByte('\n')
	for _, l := range cex.steps {
		x := insts[l.inst]
		step := x.prefix + pkg.FormatStep(x.m, int(l.event), int(l.outcome))
		if l.sender >= 0 {
			step = insts[l.sender].name + " asks " + step
		}
		fmt.Fprintf(&b, "step %s %s\n", id, step)
	}
	fmt.Fprintf(&b, "want %s holds %s\n", id, holds)
	return id + "-" + strings.ReplaceAll(holds, " ", "-"), []byte(b.String()), true
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// formatVar renders a variable's value as scripts write it: true/false, an
// enumeration value's name, a decimal number.
func formatVar(v *gen.Var, x int) string {
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

// identify renames the instances of a product trace's steps from positions in
// the order of the search, which sorts symmetric instances after every step,
// to fixed identities: their positions in the initial state. A script replays
// the trace without symmetry, each instance keeping its name.
func (ck *checker) identify(cex *counterexample) {
	if cex == nil || cex.alone {
		return
	}
	cex.counts = make([]int, len(ck.groups))
	for ci, g := range ck.groups {
		cex.counts[ci] = len(g)
	}
	if ck.noSymmetry {
		return
	}
	st := slices.Clone(cex.start)
	perm := make([]int, len(ck.insts))
	for i := range perm {
		perm[i] = i
	}
	ck.record = func(string, string) {}
	defer func() { ck.record = nil }()
	for i, l := range cex.steps {
		d := ck.deliveryOf(st, l)
		id := l
		id.inst = int16(perm[l.inst])
		if l.sender >= 0 {
			id.sender = int16(perm[l.sender])
		}
		cex.steps[i] = id
		if i < len(cex.steps)-1 {
			ck.step(0, st, d, l)
			ck.sortGroups(st, perm)
		}
	}
}

// deliveryOf returns the delivery the search made for step l from state st:
// an event from the environment, or a request on behalf of l.sender.
func (ck *checker) deliveryOf(st []int32, l label) delivery {
	d := delivery{inst: int(l.inst), event: int(l.event), outcome: int(l.outcome), sender: int(l.sender), bounce: -1}
	if l.sender < 0 {
		return d
	}
	from, to := ck.insts[l.sender].comp, ck.insts[l.inst].comp
	state := int(st[2*int(l.sender)]) / ck.insts[l.sender].c.sp.NVals
	for _, rq := range ck.pr.Requests {
		if rq.From == from && rq.To == to && rq.Event == d.event && rq.Outcome == d.outcome && containsInt(rq.States, state) {
			d.bounce, d.bounceOutcome = rq.OnReject, rq.OnRejectOutcome
			break
		}
	}
	return d
}
