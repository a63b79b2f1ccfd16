package verify

import (
	"fmt"
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
	}
	return ""
}

// Script writes the violation as a behaviour script (the format RunScript
// runs): a "new" line creating the machine with the option values the trace
// starts from, one "step" line per event of the trace, and a last line "want
// NAME holds PROPERTY" requiring the violated property. name is the file name
// the script is meant for, without ".txt": the machine and the property, as in
// breaker-invariant-countsOnlyWhenClosed or channel-obligation-writesSettle.
//
// Steps deliver each event as the checker does, whatever the table answers (a
// rejection included), so the script fails on the table the violation was found
// in, at its last line, and passes on every table on which the checker proves
// the property, as long as the names it uses (machine, options, events,
// outcomes, the invariant or obligation) still exist.
//
// ok is false when the violation cannot be written as a script: it was found
// in a product (a script has no synchronisation), or it does not come from
// CheckMachine.
func (v Violation) Script() (name string, script []byte, ok bool) {
	cex := v.cex
	if cex == nil || !cex.alone {
		return "", nil, false
	}
	holds := holdsArg(v.Property, cex.invariant)
	if holds == "" {
		return "", nil, false
	}
	pkg := cex.pkg
	m := pkg.Machines[cex.pr.Components[0].Machine]
	id := m.Name
	var b strings.Builder
	fmt.Fprintf(&b, "# Counterexample: machine %s violates %s.\n", m.Name, v.Property)
	fmt.Fprintf(&b, "# %s\n", oneLine(v.Message))
	b.WriteString("# fsmgen check wrote this script from the shortest trace that breaks it:\n")
	fmt.Fprintf(&b, "#   %s\n", oneLine(strings.Join(v.Trace, " -> ")))
	b.WriteString("# Each step delivers its event as the model checker does, whatever the table\n")
	b.WriteString("# answers (a rejection included). The last line fails until the table is fixed,\n")
	b.WriteString("# and passes once the property holds.\n")
	fmt.Fprintf(&b, "new %s %s", id, m.Name)
	vals := make([]int, len(m.Vars))
	sp, err := gen.NewSpace(m)
	if err != nil {
		return "", nil, false
	}
	sp.Decode(int(cex.start[0]), vals)
	for i, x := range m.Vars {
		if x.Option {
			fmt.Fprintf(&b, " %s=%s", x.Name, formatVar(&x, vals[i]))
		}
	}
	b.WriteByte('\n')
	for _, l := range cex.steps {
		fmt.Fprintf(&b, "step %s %s\n", id, pkg.FormatStep(m, int(l.event), int(l.outcome)))
	}
	fmt.Fprintf(&b, "want %s holds %s\n", id, holds)
	return m.Name + "-" + strings.ReplaceAll(holds, " ", "-"), []byte(b.String()), true
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
