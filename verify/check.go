package verify

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fsmkernel/fsmkernel/gen"
)

// Property names, as printed in reports.
const (
	PropTotal         = "total"         // every delivered (event, outcome) has an answer
	PropDeterministic = "deterministic" // never two answers
	PropInRange       = "updates in range"
	PropInvariants    = "invariants"
	PropMultiplicity  = "action multiplicities"
	PropOrder         = "action order" // after / notAfter
	PropTerminalQuiet = "nothing after terminal"
	PropSyncAccepted  = "sync events accepted" // no synchronised event is rejected
	PropSyncBounded   = "sync cascades terminate"
	PropOutlives      = "outlives"
	PropNoDeadlock    = "no deadlock"
	PropCanTerminate  = "terminal reachable"
)

// Violation is a property that does not hold, with the shortest trace of events
// from an initial configuration to where it fails.
type Violation struct {
	Property string
	Message  string
	Trace    []string
	// cex is the trace as the search took it, for Script.
	cex *counterexample
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s\n  trace: %s", v.Property, v.Message, strings.Join(v.Trace, " -> "))
}

// Result is what one exhaustive search established.
type Result struct {
	Name        string // machine name, or product name with its instance counts
	Configs     int    // reachable configurations (product states)
	Transitions int    // transitions explored
	Proven      []string
	Violations  []Violation
	// Unchecked are the properties a violation left unsettled: the search
	// does not take a violating transition, so what lies past it is unknown.
	Unchecked []string
	Elapsed   time.Duration
}

// OK reports whether every property holds.
func (r *Result) OK() bool { return len(r.Violations) == 0 }

// Options bounds a search.
type Options struct {
	// Counts overrides the number of instances of product components by name
	// (e.g. {"channel": 3}); 0 or absent keeps the spec's count.
	Counts map[string]int
	// MaxStates stops the search with an error beyond this many configurations.
	// 0 means 20 million.
	MaxStates int
	// NoSymmetry keeps instances of a component apart instead of identifying
	// permutations (for comparing state counts with a checker that does not).
	NoSymmetry bool
}

// CheckMachine explores one machine on its own: every event may arrive at any time.
func CheckMachine(pkg *gen.Package, m *gen.Machine, opts Options) (*Result, error) {
	mi := -1
	for i, x := range pkg.Machines {
		if x == m {
			mi = i
		}
	}
	if mi < 0 {
		return nil, fmt.Errorf("verify: machine %q is not in the package", m.Name)
	}
	return check(pkg, alone(m, mi), opts, m.Name, m.Obligations, true)
}

// alone is the product of machine m (pkg.Machines[mi]) with nothing: one
// instance, every event from the environment.
func alone(m *gen.Machine, mi int) *gen.Product {
	return &gen.Product{
		Name:       m.Name,
		Components: []gen.Component{{Name: m.Name, Machine: mi, Count: 1, Internal: make([]bool, len(m.Events))}},
	}
}

// CheckProduct explores a product of machines with its synchronisations.
func CheckProduct(pkg *gen.Package, pr *gen.Product, opts Options) (*Result, error) {
	var parts []string
	for _, c := range pr.Components {
		n := c.Count
		if k := opts.Counts[c.Name]; k > 0 {
			n = k
		}
		parts = append(parts, fmt.Sprintf("%s x%d", c.Name, n))
	}
	return check(pkg, pr, opts, pr.Name+" ("+strings.Join(parts, ", ")+")", pr.Obligations, false)
}

// instance is one running machine of a product.
type instance struct {
	comp int
	c    *compiled
}

type checker struct {
	pkg   *gen.Package
	pr    *gen.Product
	insts []instance
	// groups lists, per component, the instance indices (contiguous): symmetric
	// instances are kept sorted so that permutations are one state.
	groups [][]int
	width  int // int32s per state: config and monitor per instance

	states  []int32 // flat: width per state
	parent  []int32
	label   []label
	index   map[string]int32
	maxStat int

	violations  map[string]Violation
	edges       [][2]int32 // from, to (no self loops)
	transitions int

	queue      []delivery
	key        []byte
	noSymmetry bool

	obls []oblMon
	// termEvent marks, per component, the events some obligation names: their
	// answers are never skipped as self-loops.
	termEvent [][]bool
	oblComp   []bool // per component: some obligation names it

	// record, when set, receives every violation instead of violations: a
	// script replays one run with it (script.go) and keeps no search state.
	record func(prop, msg string)
	alone  bool // a machine on its own (CheckMachine)
}

type label struct {
	inst           int16
	event, outcome uint8
	sender         int16 // for requests: the instance on whose behalf, else -1
}

type delivery struct {
	inst, event, outcome, sender int
	// bounce is the event (with bounceOutcome) the sender receives if the table
	// rejects this delivery, or -1: then a rejection is a violation.
	bounce, bounceOutcome int
}

// check searches pr; alone says it is a machine on its own (CheckMachine),
// whose violations Violation.Script writes as behaviour scripts.
func check(pkg *gen.Package, pr *gen.Product, opts Options, name string, obls []gen.Obligation, alone bool) (*Result, error) {
	start := time.Now()
	ck, err := newChecker(pkg, pr, opts, obls, map[*gen.Machine]*compiled{})
	if err != nil {
		return nil, err
	}
	ck.alone = alone
	if err := ck.explore(); err != nil {
		return nil, err
	}
	ck.checkLiveness()
	for _, v := range ck.violations {
		ck.identify(v.cex)
	}
	return ck.result(name, start), nil
}

// newChecker sets up the search of product pr: its instances, with their
// machines compiled once each (compiledBy caches them), and the obligations'
// monitors.
func newChecker(pkg *gen.Package, pr *gen.Product, opts Options, obls []gen.Obligation, compiledBy map[*gen.Machine]*compiled) (*checker, error) {
	ck := &checker{pkg: pkg, pr: pr, index: map[string]int32{}, violations: map[string]Violation{}, maxStat: opts.MaxStates, noSymmetry: opts.NoSymmetry}
	if ck.maxStat == 0 {
		ck.maxStat = 20_000_000
	}
	for ci, comp := range pr.Components {
		m := pkg.Machines[comp.Machine]
		c, ok := compiledBy[m]
		if !ok {
			var err error
			c, err = compile(pkg, m)
			if err != nil {
				return nil, err
			}
			compiledBy[m] = c
		}
		n := comp.Count
		if k := opts.Counts[comp.Name]; k > 0 {
			n = k
		}
		var g []int
		for j := 0; j < n; j++ {
			g = append(g, len(ck.insts))
			ck.insts = append(ck.insts, instance{comp: ci, c: c})
		}
		ck.groups = append(ck.groups, g)
	}
	ck.width = 2 * len(ck.insts)
	if err := ck.setupObligations(obls); err != nil {
		return nil, err
	}
	return ck, nil
}

// result sorts the violations found into a Result.
func (ck *checker) result(name string, start time.Time) *Result {
	res := &Result{Name: name, Configs: len(ck.parent), Transitions: ck.transitions, Elapsed: time.Since(start)}
	pr := ck.pr
	props := []string{PropTotal, PropDeterministic, PropInRange, PropInvariants, PropMultiplicity, PropOrder, PropTerminalQuiet}
	for _, om := range ck.obls {
		props = append(props, om.prop)
	}
	if len(pr.Sync) > 0 {
		props = append(props, PropSyncAccepted, PropSyncBounded)
	}
	if pr.Outlives != nil {
		props = append(props, PropOutlives)
	}
	// One root cause, one diagnostic: a violated transition is not taken, so
	// the search past it is cut short, and what it says about deadlock and
	// termination is not a finding of its own.
	cut := false
	for p := range ck.violations {
		switch p {
		case PropNoDeadlock, PropCanTerminate, PropInvariants, PropOutlives:
			// Liveness itself, and state properties: a state that breaks
			// them is still explored.
		default:
			cut = true // a transition that breaks it was not taken
		}
	}
	for _, p := range []string{PropNoDeadlock, PropCanTerminate} {
		if cut {
			delete(ck.violations, p)
			res.Unchecked = append(res.Unchecked, p)
		} else {
			props = append(props, p)
		}
	}
	for _, p := range props {
		if v, bad := ck.violations[p]; bad {
			res.Violations = append(res.Violations, v)
		} else {
			res.Proven = append(res.Proven, p)
		}
	}
	return res
}

// violate records the first (shortest-trace, since the search is breadth first)
// violation of a property at state s, optionally followed by the step that
// failed. It returns the violation's counterexample for the caller to complete,
// or nil when the property was already violated. A checker that replays a
// script (record set) hands the violation to record instead.
func (ck *checker) violate(prop string, s int32, step *label, format string, args ...any) *counterexample {
	if ck.record != nil {
		ck.record(prop, fmt.Sprintf(format, args...))
		return nil
	}
	if _, seen := ck.violations[prop]; seen {
		return nil
	}
	trace := ck.trace(s)
	cex := ck.counterexample(s)
	if step != nil {
		trace = append(trace, ck.stepName(*step))
		cex.steps = append(cex.steps, *step)
	}
	ck.violations[prop] = Violation{Property: prop, Message: fmt.Sprintf(format, args...), Trace: trace, cex: cex}
	return cex
}

func (ck *checker) trace(s int32) []string {
	var steps []string
	for cur := s; ck.parent[cur] >= 0; cur = ck.parent[cur] {
		steps = append(steps, ck.stepName(ck.label[cur]))
	}
	out := []string{"start"}
	for i := len(steps) - 1; i >= 0; i-- {
		out = append(out, steps[i])
	}
	return out
}

func (ck *checker) instName(i int) string {
	comp := ck.pr.Components[ck.insts[i].comp]
	if len(ck.insts) == 1 {
		return ""
	}
	if len(ck.groups[ck.insts[i].comp]) == 1 {
		return comp.Name + "."
	}
	return fmt.Sprintf("%s[%d].", comp.Name, i-ck.groups[ck.insts[i].comp][0])
}

func (ck *checker) stepName(l label) string {
	m := ck.insts[l.inst].c.m
	name := ck.instName(int(l.inst)) + ck.pkg.FormatStep(m, int(l.event), int(l.outcome))
	if l.sender >= 0 {
		name = strings.TrimSuffix(ck.instName(int(l.sender)), ".") + " asks " + name
	}
	return name
}

func (ck *checker) stateAt(s int32) []int32 {
	return ck.states[int(s)*ck.width : int(s+1)*ck.width]
}

// canon sorts the (config, monitor) pairs of symmetric instances.
func (ck *checker) canon(st []int32) {
	if ck.noSymmetry {
		return
	}
	ck.sortGroups(st, nil)
}

// sortGroups sorts the instances of each group of st by (config, monitor),
// swapping perm (nil: none) alike.
func (ck *checker) sortGroups(st []int32, perm []int) {
	for _, g := range ck.groups {
		if len(g) < 2 {
			continue
		}
		lo := g[0]
		n := len(g)
		// insertion sort: groups are small
		for i := 1; i < n; i++ {
			for j := i; j > 0; j-- {
				a, b := 2*(lo+j-1), 2*(lo+j)
				if st[a] < st[b] || (st[a] == st[b] && st[a+1] <= st[b+1]) {
					break
				}
				st[a], st[b] = st[b], st[a]
				st[a+1], st[b+1] = st[b+1], st[a+1]
				if perm != nil {
					perm[lo+j-1], perm[lo+j] = perm[lo+j], perm[lo+j-1]
				}
			}
		}
	}
}

func (ck *checker) lookupOrAdd(st []int32, parent int32, l label) (int32, bool, error) {
	ck.key = ck.key[:0]
	for _, x := range st {
		ck.key = binary.AppendUvarint(ck.key, uint64(x))
	}
	if id, ok := ck.index[string(ck.key)]; ok {
		return id, false, nil
	}
	id := int32(len(ck.parent))
	if int(id) >= ck.maxStat {
		return 0, false, fmt.Errorf("verify: more than %d configurations in %q; reduce the instance counts or the variables' domains", ck.maxStat, ck.pr.Name)
	}
	ck.index[string(ck.key)] = id
	ck.states = append(ck.states, st...)
	ck.parent = append(ck.parent, parent)
	ck.label = append(ck.label, l)
	return id, true, nil
}

func (ck *checker) explore() error {
	// Initial states: every combination of the instances' initial configurations.
	var inits [][]int32
	inits = append(inits, make([]int32, ck.width))
	for i, in := range ck.insts {
		var next [][]int32
		for _, st := range inits {
			for _, cfg := range in.c.initialWith(ck.pr.Components[in.comp].Options) {
				s := append([]int32(nil), st...)
				s[2*i] = int32(cfg)
				s[2*i+1] = 0
				next = append(next, s)
			}
		}
		inits = next
	}
	for _, st := range inits {
		vo, vt := ck.initialObligations(st)
		ck.canon(st)
		id, _, err := ck.lookupOrAdd(st, -1, label{})
		if err != nil {
			return err
		}
		if vo != nil {
			ck.violate(vo.prop, id, nil, "%s: %s in the initial configuration %s", oblHeader(vo.o), vt.Text, ck.describe(id))
		}
	}
	cur := make([]int32, ck.width)
	for s := int32(0); int(s) < len(ck.parent); s++ {
		ck.checkState(s)
		for i, in := range ck.insts {
			// Symmetric instances in the same configuration behave alike: explore
			// the first of a run of equal ones only.
			if i > 0 && ck.insts[i-1].comp == in.comp && !ck.noSymmetry {
				st := ck.stateAt(s)
				if st[2*i] == st[2*i-2] && st[2*i+1] == st[2*i-1] {
					continue
				}
			}
			comp := ck.pr.Components[in.comp]
			conf := int(ck.stateAt(s)[2*i])
			for cell := 0; cell < in.c.ncells; cell++ {
				e := in.c.cellEvent[cell]
				if comp.Internal[e] {
					continue
				}
				if in.c.quiet(conf, cell) && !ck.termEvent[in.comp][e] {
					ck.transitions++ // answered without any change: a self-loop
					continue
				}
				copy(cur, ck.stateAt(s))
				l := label{inst: int16(i), event: uint8(e), outcome: uint8(in.c.cellOutcome[cell]), sender: -1}
				if !ck.step(s, cur, delivery{inst: i, event: e, outcome: in.c.cellOutcome[cell], sender: -1, bounce: -1}, l) {
					continue
				}
				if err := ck.addSuccessor(s, cur, l); err != nil {
					return err
				}
			}
		}
		for _, rq := range ck.pr.Requests {
			for _, i := range ck.groups[rq.From] {
				st := ck.stateAt(s)
				if i > ck.groups[rq.From][0] && !ck.noSymmetry && st[2*i] == st[2*i-2] && st[2*i+1] == st[2*i-1] {
					continue // symmetric to the previous instance
				}
				if !containsInt(rq.States, int(st[2*i])/ck.insts[i].c.sp.NVals) {
					continue
				}
				for _, target := range ck.groups[rq.To] {
					copy(cur, ck.stateAt(s))
					l := label{inst: int16(target), event: uint8(rq.Event), outcome: uint8(rq.Outcome), sender: int16(i)}
					if !ck.step(s, cur, delivery{inst: target, event: rq.Event, outcome: rq.Outcome, sender: i, bounce: rq.OnReject, bounceOutcome: rq.OnRejectOutcome}, l) {
						continue
					}
					if err := ck.addSuccessor(s, cur, l); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func (ck *checker) addSuccessor(s int32, cur []int32, l label) error {
	ck.canon(cur)
	ck.transitions++
	id, _, err := ck.lookupOrAdd(cur, s, l)
	if err != nil {
		return err
	}
	if id != s {
		ck.edges = append(ck.edges, [2]int32{s, id})
	}
	return nil
}

// step delivers d and every event it causes through synchronisation to st, in
// order. It returns false when a violation makes the step meaningless.
func (ck *checker) step(s int32, st []int32, d delivery, l label) bool {
	ck.queue = append(ck.queue[:0], d)
	for n := 0; len(ck.queue) > 0; n++ {
		if n == 256 {
			ck.violate(PropSyncBounded, s, &l, "a synchronisation cascade did not end after 256 deliveries")
			return false
		}
		d := ck.queue[0]
		ck.queue = ck.queue[1:]
		if !ck.deliver(s, st, d, l) {
			return false
		}
	}
	return true
}

func (ck *checker) deliver(s int32, st []int32, d delivery, l label) bool {
	in := ck.insts[d.inst]
	c := in.c
	m := c.m
	conf := int(st[2*d.inst])
	cell := c.cellBase[d.event] + d.outcome
	t := c.at(conf, cell)
	what := func() string {
		who := ""
		if n := strings.TrimSuffix(ck.instName(d.inst), "."); n != "" {
			who = n + " "
		}
		return fmt.Sprintf("%sin %s on %s", who, c.sp.Describe(conf), ck.pkg.FormatStep(m, d.event, d.outcome))
	}
	switch t.next {
	case noAnswer:
		ck.violate(PropTotal, s, &l, "no row answers %s", what())
		return false
	case twoAnswers:
		rows := c.answering(conf, cell)
		names := make([]string, len(rows))
		for i, r := range rows {
			names[i] = rowPos(&m.Rows[r])
		}
		ck.violate(PropDeterministic, s, &l, "two rows answer %s (rows %s)", what(), strings.Join(names, " and "))
		return false
	case outOfRange:
		ck.violate(PropInRange, s, &l, "an update leaves its domain: %s (row %s)", what(), rowPos(&m.Rows[t.row]))
		return false
	}
	row := &m.Rows[t.row]
	if d.sender >= 0 && row.Kind == gen.RowReject {
		if d.bounce >= 0 {
			// The runtime returns the rejection to the caller as an error.
			ck.queue = append(ck.queue, delivery{inst: d.sender, event: d.bounce, outcome: d.bounceOutcome, sender: -1, bounce: -1})
			return true
		}
		ck.violate(PropSyncAccepted, s, &l, "the synchronised event is rejected: %s", what())
		return false
	}
	if c.terminal(conf) && (len(row.Do) > 0 || int(t.next) != conf) {
		ck.violate(PropTerminalQuiet, s, &l, "a terminal configuration acts or leaves: %s (row %s)", what(), rowPos(row))
		return false
	}
	mon, prop, msg := c.monitor(int(st[2*d.inst+1]), d.event, row.Do)
	if prop != "" {
		ck.violate(prop, s, &l, "%s: %s (row %s)", msg, what(), rowPos(row))
		return false
	}
	st[2*d.inst] = t.next
	st[2*d.inst+1] = int32(mon)
	if len(ck.obls) > 0 && row.Kind != gen.RowReject && !ck.obligate(s, st, d, conf, row, l, what) {
		return false
	}
	for _, a := range row.Do {
		for _, sy := range ck.pr.Sync {
			if sy.From != in.comp || sy.Action != a {
				continue
			}
			if sy.To == gen.SyncSender {
				if d.sender >= 0 {
					sm := ck.insts[d.sender].c.m
					if sy.Event >= len(sm.Events) || sm.Events[sy.Event].Name != sy.EventName {
						ck.violate(PropSyncAccepted, s, &l, "%s answers %s, whose machine %q has no event %q", what(), strings.TrimSuffix(ck.instName(d.sender), "."), sm.Name, sy.EventName)
						return false
					}
					ck.queue = append(ck.queue, delivery{inst: d.sender, event: sy.Event, outcome: sy.Outcome, sender: d.inst, bounce: sy.OnReject, bounceOutcome: sy.OnRejectOutcome})
				}
				continue
			}
			for _, target := range ck.groups[sy.To] {
				if target != d.inst {
					ck.queue = append(ck.queue, delivery{inst: target, event: sy.Event, outcome: sy.Outcome, sender: d.inst, bounce: sy.OnReject, bounceOutcome: sy.OnRejectOutcome})
				}
			}
		}
	}
	return true
}

// checkState checks the state properties of a newly reached state.
func (ck *checker) checkState(s int32) {
	st := ck.stateAt(s)
	for i, in := range ck.insts {
		conf := int(st[2*i])
		if inv := in.c.invariant(conf); inv >= 0 {
			iv := &in.c.m.Invariants[inv]
			if cex := ck.violate(PropInvariants, s, nil, "invariant %q (%s:%d:%d) does not hold in %s%s", iv.Name, iv.Pos.File, iv.Pos.Line, iv.Pos.Col, ck.instName(i), in.c.sp.Describe(conf)); cex != nil {
				cex.invariant = iv.Name
			}
		}
	}
	if o := ck.pr.Outlives; o != nil {
		for _, i := range ck.groups[o.Component] {
			if !ck.insts[i].c.terminal(int(st[2*i])) {
				continue
			}
			for _, other := range o.Others {
				for _, j := range ck.groups[other] {
					c := ck.insts[j].c
					conf := int(st[2*j])
					if !c.terminal(conf) && !c.isInitialState(conf) {
						ck.violate(PropOutlives, s, nil, "%s is terminal while %s is %s", strings.TrimSuffix(ck.instName(i), "."), strings.TrimSuffix(ck.instName(j), "."), c.sp.Describe(conf))
					}
				}
			}
		}
	}
}

func (ck *checker) allTerminal(s int32) bool {
	st := ck.stateAt(s)
	for i, in := range ck.insts {
		if !in.c.terminal(int(st[2*i])) {
			return false
		}
	}
	return true
}

// checkLiveness searches backwards from the terminal states and reports the
// nearest state from which none is reachable, and deadlocks.
func (ck *checker) checkLiveness() {
	n := len(ck.parent)
	out := make([]int32, n+1) // CSR of reverse edges
	for _, e := range ck.edges {
		out[e[1]+1]++
	}
	for i := 1; i <= n; i++ {
		out[i] += out[i-1]
	}
	rev := make([]int32, len(ck.edges))
	fill := append([]int32(nil), out[:n]...)
	hasExit := make([]bool, n)
	for _, e := range ck.edges {
		rev[fill[e[1]]] = e[0]
		fill[e[1]]++
		hasExit[e[0]] = true
	}
	ck.edges = nil
	ok := make([]bool, n)
	var queue []int32
	for s := int32(0); int(s) < n; s++ {
		if ck.allTerminal(s) {
			ok[s] = true
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, p := range rev[out[s]:out[s+1]] {
			if !ok[p] {
				ok[p] = true
				queue = append(queue, p)
			}
		}
	}
	// States are numbered in breadth-first order: the first bad one has the
	// shortest trace.
	for s := int32(0); int(s) < n; s++ {
		if !ok[s] {
			ck.violate(PropCanTerminate, s, nil, "no terminal configuration is reachable from %s", ck.describe(s))
			break
		}
	}
	for s := int32(0); int(s) < n; s++ {
		if !hasExit[s] && !ck.allTerminal(s) {
			ck.violate(PropNoDeadlock, s, nil, "every event leaves %s unchanged", ck.describe(s))
			break
		}
	}
}

func (ck *checker) describe(s int32) string {
	st := ck.stateAt(s)
	var parts []string
	for i, in := range ck.insts {
		parts = append(parts, ck.instName(i)+in.c.sp.Describe(int(st[2*i])))
	}
	return strings.Join(parts, ", ")
}

// Report renders results for people, one block per search.
func Report(results []*Result) string {
	var b strings.Builder
	for _, r := range results {
		verdict := "ok"
		if !r.OK() {
			verdict = "FAILED"
		}
		fmt.Fprintf(&b, "check %s: %s\n", r.Name, verdict)
		fmt.Fprintf(&b, "  %d configurations, %d transitions, %s\n", r.Configs, r.Transitions, r.Elapsed.Round(time.Microsecond))
		if len(r.Proven) > 0 {
			fmt.Fprintf(&b, "  proven: %s\n", strings.Join(r.Proven, ", "))
		}
		sort.SliceStable(r.Violations, func(i, j int) bool { return len(r.Violations[i].Trace) < len(r.Violations[j].Trace) })
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "  VIOLATED %s: %s\n    trace: %s\n", v.Property, v.Message, strings.Join(v.Trace, " -> "))
		}
		if len(r.Unchecked) > 0 {
			fmt.Fprintf(&b, "  not checked, the search being cut short by the violations: %s\n", strings.Join(r.Unchecked, ", "))
		}
	}
	return b.String()
}

// rowPos names a row's place in its spec file: file:line:col.
func rowPos(r *gen.Row) string {
	return fmt.Sprintf("%s:%d:%d", r.Pos.File, r.Pos.Line, r.Pos.Col)
}
