package verify

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fsmkernel/fsmkernel/gen"
)

// A script's product instance runs every instance of a product together, with
// its synchronisations, as CheckProduct explores it, but without identifying
// symmetric instances: channel[1] is the same instance from "new" to the end.
//
//	new NAME PRODUCT [component=N ...] [instance.option=value ...]
//	    Create the product with N instances of each component named (default:
//	    the spec's count), every option at its declared initial value or the
//	    value the component fixes, changed by the given ones. Instances are
//	    named as in traces: the component's name, with [i] after it when it
//	    has several (loop, channel[0], channel[1]).
//	step NAME instance.event[(outcome)]
//	    The environment delivers the event to the instance, and every event
//	    the answer synchronises follows, as in the search.
//	step NAME sender asks instance.event[(outcome)]
//	    The environment delivers a request on behalf of sender; when sender is
//	    in none of the request's states the environment cannot make it, and
//	    the step does nothing.
//	want NAME holds PROPERTY
//	    As for a machine, over every instance, with the product's own
//	    properties: syncAccepted, syncBounded (of the run), outlives (of the
//	    configuration reached), and the product's obligations.
//
// A product takes no other expectations.

// scriptName names instance i of ck as scripts do: the component's name, with
// [k] for a component of several instances.
func (ck *checker) scriptName(i int) string {
	ci := ck.insts[i].comp
	name := ck.pr.Components[ci].Name
	if g := ck.groups[ci]; len(g) > 1 {
		name += "[" + strconv.Itoa(i-g[0]) + "]"
	}
	return name
}

func (ck *checker) scriptInstance(name string) int {
	for i := range ck.insts {
		if ck.scriptName(i) == name {
			return i
		}
	}
	return -1
}

func (ck *checker) scriptNames() string {
	var names []string
	for i := range ck.insts {
		names = append(names, ck.scriptName(i))
	}
	return strings.Join(names, ", ")
}

func (r *scriptRun) newProduct(line int, text string, fields []string, pr *gen.Product) bool {
	counts := map[string]int{}
	var opts []string
	for _, kv := range fields[3:] {
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			r.failf(line, "%s: %q: want component=N or instance.option=value", text, kv)
			return false
		}
		if strings.Contains(key, ".") {
			opts = append(opts, kv)
			continue
		}
		if !slices.ContainsFunc(pr.Components, func(c gen.Component) bool { return c.Name == key }) {
			r.failf(line, "%s: product %s has no component %q", text, pr.Name, key)
			return false
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > 8 {
			r.failf(line, "%s: %q: want component=N with N from 1 to 8", text, kv)
			return false
		}
		counts[key] = n
	}
	ck, err := newChecker(r.pkg, pr, Options{Counts: counts, NoSymmetry: true}, pr.Obligations, r.compiled)
	if err != nil {
		r.failf(line, "%s: %v", text, err)
		return false
	}
	vals := make([][]int, len(ck.insts))
	for i, x := range ck.insts {
		m := x.c.m
		fixed := pr.Components[x.comp].Options
		vals[i] = make([]int, len(m.Vars))
		for vi, v := range m.Vars {
			vals[i][vi] = v.Initial
			if v.Option && fixed != nil && fixed[vi] >= 0 {
				vals[i][vi] = fixed[vi]
			}
		}
	}
	for _, kv := range opts {
		key, val, _ := strings.Cut(kv, "=")
		instName, opt, _ := strings.Cut(key, ".")
		i := ck.scriptInstance(instName)
		if i < 0 {
			r.failf(line, "%s: product %s has no instance %q (instances: %s)", text, pr.Name, instName, ck.scriptNames())
			return false
		}
		m := ck.insts[i].c.m
		vi := slices.IndexFunc(m.Vars, func(v gen.Var) bool { return v.Name == opt && v.Option })
		if vi < 0 {
			r.failf(line, "%s: machine %s of %s has no option %q", text, m.Name, instName, opt)
			return false
		}
		x, err := parseVar(&m.Vars[vi], val)
		if err != nil {
			r.failf(line, "%s: option %s: %v", text, key, err)
			return false
		}
		if fixed := pr.Components[ck.insts[i].comp].Options; fixed != nil && fixed[vi] >= 0 && fixed[vi] != x {
			r.failf(line, "%s: option %s: product %s fixes it to %s", text, key, pr.Name, formatVar(&m.Vars[vi], fixed[vi]))
			return false
		}
		vals[i][vi] = x
	}
	in := &scriptInst{pr: pr, ck: ck, totals: map[string]int{}, broken: map[string]brokenAt{}}
	in.st = make([]int32, ck.width)
	for i, x := range ck.insts {
		in.st[2*i] = int32(x.c.sp.Encode(x.c.m.Initial, vals[i]))
	}
	if vo, vt := ck.initialObligations(in.st); vo != nil {
		in.broken[vo.prop] = brokenAt{line: line, text: text, what: fmt.Sprintf("%s: %s in the initial configuration", oblHeader(vo.o), vt.Text)}
	}
	r.insts[fields[1]] = in
	return true
}

// productEvent parses "instance.event[(outcome)]" of product instance in.
func (r *scriptRun) productEvent(in *scriptInst, s string) (inst, e, o int, err error) {
	name, ev, ok := strings.Cut(s, ".")
	if !ok {
		return 0, 0, 0, fmt.Errorf("%q: want instance.event[(outcome)]", s)
	}
	inst = in.ck.scriptInstance(name)
	if inst < 0 {
		return 0, 0, 0, fmt.Errorf("product %s has no instance %q (instances: %s)", in.pr.Name, name, in.ck.scriptNames())
	}
	e, o, err = r.event(in.ck.insts[inst].c.m, ev)
	return inst, e, o, err
}

func (r *scriptRun) productStep(line int, text string, fields []string, in *scriptInst) (*scriptStep, bool) {
	ck := in.ck
	if fields[0] != "step" {
		r.failf(line, "%s: %s is product %s: use step, not fire", text, fields[1], in.pr.Name)
		return nil, false
	}
	var d delivery
	switch len(fields) {
	case 3:
		inst, e, o, err := r.productEvent(in, fields[2])
		if err != nil {
			r.failf(line, "%s: %v", text, err)
			return nil, false
		}
		if ck.pr.Components[ck.insts[inst].comp].Internal[e] {
			r.failf(line, "%s: event %s of %s is internal: only a synchronisation delivers it", text, ck.insts[inst].c.m.Events[e].Name, fields[2])
			return nil, false
		}
		d = delivery{inst: inst, event: e, outcome: o, sender: -1, bounce: -1}
	case 5:
		if fields[3] != "asks" {
			r.failf(line, "%s: want: step NAME sender asks instance.event[(outcome)]", text)
			return nil, false
		}
		sender := ck.scriptInstance(fields[2])
		if sender < 0 {
			r.failf(line, "%s: product %s has no instance %q (instances: %s)", text, in.pr.Name, fields[2], ck.scriptNames())
			return nil, false
		}
		inst, e, o, err := r.productEvent(in, fields[4])
		if err != nil {
			r.failf(line, "%s: %v", text, err)
			return nil, false
		}
		from, to := ck.insts[sender].comp, ck.insts[inst].comp
		var rqs []gen.Request
		for _, rq := range ck.pr.Requests {
			if rq.From == from && rq.To == to && rq.Event == e && rq.Outcome == o {
				rqs = append(rqs, rq)
			}
		}
		if len(rqs) == 0 {
			r.failf(line, "%s: product %s has no request of %s to %s", text, in.pr.Name, fields[2], fields[4])
			return nil, false
		}
		state := int(in.st[2*sender]) / ck.insts[sender].c.sp.NVals
		i := slices.IndexFunc(rqs, func(rq gen.Request) bool { return containsInt(rq.States, state) })
		st := &scriptStep{line: line, text: text}
		in.last = st
		if i < 0 {
			return st, true // the environment cannot make this request now
		}
		d = delivery{inst: inst, event: e, outcome: o, sender: sender, bounce: rqs[i].OnReject, bounceOutcome: rqs[i].OnRejectOutcome}
	}
	st := &scriptStep{line: line, text: text}
	in.last = st
	broke, _ := in.deliver(d, false)
	for _, b := range broke {
		if _, seen := in.broken[b[0]]; !seen {
			in.broken[b[0]] = brokenAt{line: line, text: text, what: b[1]}
		}
	}
	return st, true
}

func (r *scriptRun) productHolds(line int, text string, in *scriptInst, stepText string, args []string) bool {
	usage := func() bool {
		r.failf(line, "%s: want: want NAME holds invariant INV|invariants|outlives|terminalReachable|noDeadlock|total|deterministic|inRange|multiplicities|order|terminalQuiet|syncAccepted|syncBounded|obligation OBL", text)
		return false
	}
	if len(args) == 0 {
		return usage()
	}
	ck := in.ck
	here := func() string {
		ck.states = append(ck.states[:0], in.st...)
		return ck.describe(0)
	}
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
		found := false
		for i, x := range ck.insts {
			m := x.c.m
			j := slices.IndexFunc(m.Invariants, func(iv gen.Invariant) bool { return iv.Name == args[1] })
			if j < 0 {
				continue
			}
			found = true
			vals := make([]int, len(m.Vars))
			s := x.c.sp.Decode(int(in.st[2*i]), vals)
			if iv := &m.Invariants[j]; iv.Expr.Eval(s, vals) == 0 {
				fail(fmt.Sprintf("invariant %q (%s) does not hold in %s %s", iv.Name, posLine(iv.Pos), ck.scriptName(i), x.c.sp.Describe(int(in.st[2*i]))))
				return true
			}
		}
		if !found {
			r.failf(line, "%s: no machine of product %s has an invariant %q", text, in.pr.Name, args[1])
			return false
		}
	case "obligation":
		if len(args) != 2 {
			return usage()
		}
		if !slices.ContainsFunc(in.pr.Obligations, func(o gen.Obligation) bool { return o.Name == args[1] }) {
			var names []string
			for _, o := range in.pr.Obligations {
				names = append(names, o.Name)
			}
			r.failf(line, "%s: product %s has no obligation %q (obligations: %s)", text, in.pr.Name, args[1], strings.Join(names, ", "))
			return false
		}
		runProp(ObligationProperty(args[1]))
	default:
		if len(args) != 1 {
			return usage()
		}
		switch p {
		case "invariants", "outlives":
			prop := map[string]string{"invariants": PropInvariants, "outlives": PropOutlives}[p]
			if msg, bad := in.stateViolations()[prop]; bad {
				fail(msg)
			}
		case "terminalReachable":
			if !in.terminalReachable() {
				fail("no terminal configuration is reachable from " + here())
			}
		case "noDeadlock":
			if in.deadlocked() {
				fail("every step leaves " + here() + " unchanged")
			}
		case "syncAccepted":
			runProp(PropSyncAccepted)
		case "syncBounded":
			runProp(PropSyncBounded)
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
