package verify

import (
	"fmt"

	"github.com/fsmkernel/fsmkernel/gen"
)

// compiled is a machine's transition relation as tables over its
// configurations, filled as the search reaches them, so the product search does
// array lookups, not interpretation. A configuration's answers take room only
// once it is reached: most of a machine's configurations never are.

const (
	noAnswer   = -1
	twoAnswers = -2
	outOfRange = -3
)

type transition struct {
	next int32 // next configuration, or noAnswer / twoAnswers / outOfRange
	row  int32
	done bool // computed (the table is filled on demand)
}

type compiled struct {
	m                      *gen.Machine
	sp                     *gen.Space
	nconf                  int
	ncells                 int   // (event, outcome) pairs
	cellBase               []int // first cell of each event
	cellEvent, cellOutcome []int
	block                  []int32      // per configuration: 1 + its block of ncells answers in table, 0 before it is reached
	table                  []transition // the reached configurations' answers, ncells each
	inv                    []int32      // per configuration: first violated invariant, -1 for none, invUnknown before it is asked
	initial                []int

	// Monitors of the action properties, packed into one int per instance.
	maxActs        []int // actions with a Max, digit d counts occurrences (0..Max)
	afterActs      []int // actions with an After, one bit each: After seen since last occurrence
	notAfterEvents []int // events named by some NotAfter, one bit each: event seen
	notAfterActs   []int // actions named by some NotAfterActions, one bit each: action seen
	radix          int   // product of (Max+1) over maxActs

	vals, next []int // scratch for at
}

// at returns the answer of configuration conf to cell, computing it on first use:
// most configurations of a machine are never reached.
func (c *compiled) at(conf, cell int) transition {
	b := c.block[conf]
	if b == 0 {
		c.table = append(c.table, make([]transition, c.ncells)...)
		b = int32(len(c.table) / c.ncells)
		c.block[conf] = b
	}
	t := &c.table[int(b-1)*c.ncells+cell]
	if t.done {
		return *t
	}
	m := c.m
	s := c.sp.Decode(conf, c.vals)
	e, o := c.cellEvent[cell], c.cellOutcome[cell]
	*t = transition{next: noAnswer, row: -1, done: true}
	for _, r := range m.Cells[m.CellIndex(s, e, o)] {
		g := m.Rows[r].Guard
		if g != nil && g.Eval(s, c.vals) == 0 {
			continue
		}
		if t.row >= 0 {
			t.next = twoAnswers
			break
		}
		t.row = int32(r)
		ns := m.Apply(r, s, c.vals, c.next)
		inRange := true
		for i, v := range c.next {
			if v < m.Vars[i].Min || v > m.Vars[i].Max {
				inRange = false
			}
		}
		if inRange {
			t.next = int32(c.sp.Encode(ns, c.next))
		} else {
			t.next = outOfRange
		}
	}
	return *t
}

// answering returns the rows whose guards hold for cell in configuration
// conf, in table order: for naming them in a violation.
func (c *compiled) answering(conf, cell int) []int {
	m := c.m
	s := c.sp.Decode(conf, c.vals)
	var rows []int
	for _, r := range m.Cells[m.CellIndex(s, c.cellEvent[cell], c.cellOutcome[cell])] {
		if g := m.Rows[r].Guard; g == nil || g.Eval(s, c.vals) != 0 {
			rows = append(rows, r)
		}
	}
	return rows
}

// maxConfigurations bounds a machine's configurations (the product of its
// state count and its variables' domains): the per-configuration index costs 8
// bytes each, whether or not the configuration is reached.
const maxConfigurations = 1 << 26

// invUnknown marks a configuration whose invariants were not evaluated yet.
const invUnknown = -2

func compile(pkg *gen.Package, m *gen.Machine) (*compiled, error) {
	sp, err := gen.NewSpace(m)
	if err != nil {
		return nil, err
	}
	c := &compiled{m: m, sp: sp, nconf: sp.Len(), radix: 1}
	for e := range m.Events {
		c.cellBase = append(c.cellBase, c.ncells)
		for o := 0; o < m.NumOutcomes(pkg, e); o++ {
			c.cellEvent = append(c.cellEvent, e)
			c.cellOutcome = append(c.cellOutcome, o)
			c.ncells++
		}
	}
	if c.nconf > maxConfigurations {
		return nil, fmt.Errorf("verify: machine %q has %d configurations (states x variable domains), more than the %d the checker indexes", m.Name, c.nconf, maxConfigurations)
	}
	c.block = make([]int32, c.nconf)
	c.inv = make([]int32, c.nconf)
	for i := range c.inv {
		c.inv[i] = invUnknown
	}
	c.vals = make([]int, len(m.Vars))
	c.next = make([]int, len(m.Vars))
	c.initial = sp.Initial()
	seenEvent := map[int]bool{}
	for a, act := range m.Actions {
		if act.Max > 0 {
			c.maxActs = append(c.maxActs, a)
			c.radix *= act.Max + 1
		}
		if act.After >= 0 {
			c.afterActs = append(c.afterActs, a)
		}
		for _, e := range act.NotAfter {
			if !seenEvent[e] {
				seenEvent[e] = true
				c.notAfterEvents = append(c.notAfterEvents, e)
			}
		}
		for _, x := range act.NotAfterActions {
			if !containsInt(c.notAfterActs, x) {
				c.notAfterActs = append(c.notAfterActs, x)
			}
		}
	}
	return c, nil
}

// terminal reports whether configuration conf is in a terminal state.
func (c *compiled) terminal(conf int) bool {
	return c.m.States[conf/c.sp.NVals].Terminal
}

// invariant returns the first invariant configuration conf violates, or -1,
// evaluating them on first use.
func (c *compiled) invariant(conf int) int {
	if v := c.inv[conf]; v != invUnknown {
		return int(v)
	}
	s := c.sp.Decode(conf, c.vals)
	v := -1
	for i, inv := range c.m.Invariants {
		if inv.Expr.Eval(s, c.vals) == 0 {
			v = i
			break
		}
	}
	c.inv[conf] = int32(v)
	return v
}

// initialWith returns the initial configurations whose options agree with fixed
// (indexed by variable; -1 leaves an option free).
func (c *compiled) initialWith(fixed []int) []int {
	if fixed == nil {
		return c.initial
	}
	var out []int
	vals := make([]int, len(c.m.Vars))
	for _, id := range c.initial {
		c.sp.Decode(id, vals)
		ok := true
		for i, f := range fixed {
			if f >= 0 && vals[i] != f {
				ok = false
			}
		}
		if ok {
			out = append(out, id)
		}
	}
	return out
}

// quiet reports whether (conf, cell) is answered by an ignore or reject row, or a
// transition that changes nothing and performs nothing: the step is a self-loop
// whatever the monitors hold. A missing answer is not quiet (it is a violation).
func (c *compiled) quiet(conf, cell int) bool {
	t := c.at(conf, cell)
	if t.next < 0 {
		return false
	}
	row := &c.m.Rows[t.row]
	switch row.Kind {
	case gen.RowIgnore, gen.RowReject:
		return !c.eventMonitored(c.cellEvent[cell])
	}
	return int(t.next) == conf && len(row.Do) == 0 && !c.eventMonitored(c.cellEvent[cell])
}

// eventMonitored reports whether answering event changes a monitor (notAfter).
func (c *compiled) eventMonitored(event int) bool {
	return containsInt(c.notAfterEvents, event)
}

func (c *compiled) isInitialState(conf int) bool {
	return conf/c.sp.NVals == c.m.Initial
}

// monitor advances the action monitors over one transition answering event with
// actions, in order. It returns the new monitor value, or the violated property
// and what went wrong.
func (c *compiled) monitor(mon, event int, actions []int) (int, string, string) {
	counts := mon % c.radix
	bits := mon / c.radix
	// Events named by notAfter: set when the event is answered.
	for i, e := range c.notAfterEvents {
		if e == event {
			bits |= 1 << (len(c.afterActs) + i)
		}
	}
	actBit := func(i int) int { return 1 << (len(c.afterActs) + len(c.notAfterEvents) + i) }
	for _, a := range actions {
		act := &c.m.Actions[a]
		if len(act.With) > 0 {
			found := false
			var names []string
			for _, w := range act.With {
				found = found || containsInt(actions, w)
				names = append(names, c.m.Actions[w].Name)
			}
			if !found {
				return 0, PropOrder, fmt.Sprintf("action %q without any of %v in the same transition", act.Name, names)
			}
		}
		for i, e := range c.notAfterEvents {
			if bits&(1<<(len(c.afterActs)+i)) != 0 && containsInt(act.NotAfter, e) {
				return 0, PropOrder, fmt.Sprintf("action %q after event %q", act.Name, c.m.Events[e].Name)
			}
		}
		for i, x := range c.notAfterActs {
			if bits&actBit(i) != 0 && containsInt(act.NotAfterActions, x) {
				return 0, PropOrder, fmt.Sprintf("action %q after action %q", act.Name, c.m.Actions[x].Name)
			}
		}
		for i, x := range c.notAfterActs {
			if x == a {
				bits |= actBit(i)
			}
		}
		for i, x := range c.afterActs {
			if x == a {
				if bits&(1<<i) == 0 {
					return 0, PropOrder, fmt.Sprintf("action %q without %q since its previous occurrence", act.Name, c.m.Actions[act.After].Name)
				}
				bits &^= 1 << i
			}
		}
		for i, x := range c.afterActs {
			if c.m.Actions[x].After == a {
				bits |= 1 << i
			}
		}
		div := 1
		for _, x := range c.maxActs {
			max := c.m.Actions[x].Max
			if x == a {
				n := counts / div % (max + 1)
				if n == max {
					return 0, PropMultiplicity, fmt.Sprintf("action %q more than %d time(s)", act.Name, max)
				}
				counts += div
			}
			div *= max + 1
		}
	}
	return bits*c.radix + counts, "", ""
}

func containsInt(s []int, x int) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
