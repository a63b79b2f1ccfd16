package gen

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The kernel's tables were shortened, first with conditional actions
// (channel_rows_v1, 162 rows, became channel_rows_v2, 128), then with trigger
// lists (the channel, the listener and the event loop); a copy of each table
// as it was before is kept in testdata, and every old copy is compared with
// the table it was rewritten into: the current one, or for the channel
// channel_rows_v3, the channel as the trigger lists left it (97 rows), since
// the current channel has since gained behaviour (the timeouts: timerFired,
// startTimer), which the checker and the behaviour scripts prove instead.
// The expanded rows of old and new
// must answer alike: for every cell (state, event, outcome) and every
// valuation of the variables its rows read, the first matching row of each
// table gives the same kind, target, actions in order and updated values.
var rewrittenTables = []struct{ old, new string }{
	{"testdata/channel_rows_v1.yaml", "testdata/channel_rows_v3.yaml"},
	{"testdata/channel_rows_v2.yaml", "testdata/channel_rows_v3.yaml"},
	{"testdata/listener_rows_v1.yaml", "../spec/listener.yaml"},
	{"testdata/eventloop_rows_v1.yaml", "../spec/eventloop.yaml"},
}

func loadMachine(t *testing.T, path string) (*Package, *Machine) {
	t.Helper()
	var srcs []Source
	for _, p := range []string{"../spec/outcomes.yaml", path} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, Source{Path: p, Data: data})
	}
	pkg, err := Load(srcs...)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(pkg.Machines) != 1 {
		t.Fatalf("%s: %d machines, want 1", path, len(pkg.Machines))
	}
	return pkg, pkg.Machines[0]
}

func TestRewrittenTablesAnswerAlike(t *testing.T) {
	for _, tc := range rewrittenTables {
		t.Run(filepath.Base(tc.old), func(t *testing.T) {
			pkg, old := loadMachine(t, tc.old)
			_, cur := loadMachine(t, tc.new)
			sameDeclarations(t, old, cur)
			cells, valuations := equivalentRows(t, pkg, old, cur)
			t.Logf("%s (%d rows expanded) against %s (%d): %d cells, %d (cell, valuation) pairs compared", tc.new, len(cur.Rows), tc.old, len(old.Rows), cells, valuations)
		})
	}
}

func sameDeclarations(t *testing.T, a, b *Machine) {
	t.Helper()
	names := func(m *Machine) (out []string) {
		for _, s := range m.States {
			out = append(out, "state "+s.Name)
		}
		for _, e := range m.Events {
			out = append(out, "event "+e.Name)
		}
		for _, x := range m.Actions {
			out = append(out, "action "+x.Name)
		}
		for _, v := range m.Vars {
			out = append(out, "var "+v.Name)
		}
		return out
	}
	if !slices.Equal(names(a), names(b)) {
		t.Fatalf("the tables declare different states, events, actions or variables:\n%v\n%v", names(a), names(b))
	}
}

// answer is what the first matching row does in one configuration.
type answer struct {
	matched bool
	kind    RowKind
	to      int
	do      []int
	vals    []int
	line    int
}

// firstAnswer answers one configuration with the evaluator the explorer and
// the model checker use (Match, Apply).
func firstAnswer(m *Machine, state, event, outcome int, vals []int) answer {
	r := m.Match(state, event, outcome, vals)
	if r < 0 {
		return answer{}
	}
	a := answer{matched: true, kind: m.Rows[r].Kind, do: m.Rows[r].Do, vals: make([]int, len(vals)), line: m.Rows[r].Pos.Line}
	a.to = m.Apply(r, state, vals, a.vals)
	return a
}

// equivalentRows compares the two tables cell by cell. In each cell only the
// variables read by a candidate row's guard or updates can change an answer:
// those are enumerated over their whole domains, the others fixed, which is
// every valuation as far as the cell can tell (the channel's 15 variables
// have 98,304 valuations, too many to enumerate in each of its 612 cells).
func equivalentRows(t *testing.T, pkg *Package, old, cur *Machine) (cells, valuations int) {
	t.Helper()
	candidates := func(m *Machine, s, e, o int) []int { return m.Cells[m.CellIndex(s, e, o)] }
	read := map[int]bool{}
	var mark func(e *Expr)
	mark = func(e *Expr) {
		if e == nil {
			return
		}
		if e.Op == OpVar && e.Var >= 0 {
			read[e.Var] = true
		}
		mark(e.L)
		mark(e.R)
	}
	failures := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for s := range old.States {
		for e := range old.Events {
			for o := 0; o < old.NumOutcomes(pkg, e); o++ {
				oc, nc := candidates(old, s, e, o), candidates(cur, s, e, o)
				clear(read)
				for _, rows := range []struct {
					m  *Machine
					ix []int
				}{{old, oc}, {cur, nc}} {
					for _, i := range rows.ix {
						mark(rows.m.Rows[i].Guard)
						for _, u := range rows.m.Rows[i].Set {
							mark(u.Value)
						}
					}
				}
				var vars []int
				for v := range read {
					vars = append(vars, v)
				}
				slices.Sort(vars)
				vals := make([]int, len(old.Vars))
				for i, v := range old.Vars {
					vals[i] = v.Min
				}
				cells++
				compare := func(vals []int) {
					valuations++
					a, b := firstAnswer(old, s, e, o, vals), firstAnswer(cur, s, e, o, vals)
					if a.matched != b.matched || a.kind != b.kind || a.to != b.to || !slices.Equal(a.do, b.do) || !slices.Equal(a.vals, b.vals) {
						failures++
						if failures <= 10 {
							t.Errorf("state %s, event %s, outcome %d, values %v: old row at line %d answers %+v, new row at line %d answers %+v",
								old.States[s].Name, old.Events[e].Name, o, vals, a.line, a, b.line, b)
						}
					}
				}
				// The variables no row of the cell reads cannot change its
				// answer; a few random valuations of all of them check that.
				full := make([]int, len(old.Vars))
				for range 16 {
					for i, v := range old.Vars {
						full[i] = v.Min + rng.IntN(v.Size())
					}
					compare(full)
				}
				for {
					compare(vals)
					// Next valuation of the variables read, like an odometer.
					k := 0
					for ; k < len(vars); k++ {
						v := vars[k]
						if vals[v] < old.Vars[v].Max {
							vals[v]++
							break
						}
						vals[v] = old.Vars[v].Min
					}
					if k == len(vars) {
						break
					}
				}
			}
		}
	}
	if failures > 0 {
		t.Fatalf("%d (cell, valuation) pairs answered differently", failures)
	}
	return cells, valuations
}

// A row with a trigger list and groups restricted to some of its triggers
// answers like the plain rows it stands for, written out by hand. Groups for
// different triggers may set the same variable.
func TestTriggerListsAnswerLikePlainRows(t *testing.T) {
	const head = `outcomes:
  res:
    description: A result.
    values: {ok: Fine., bad: Not fine., odd: Odd.}
machine:
  name: m
  description: A test machine.
  states:
    idle: {description: Idle., initial: true}
    busy: {description: Busy.}
    done: {description: Done., terminal: true}
  events:
    start: {description: Start.}
    result: {description: A result., outcome: res}
    check: {description: A check., outcome: res}
    stop: {description: Stop., abnormal: true}
  variables:
    loud: {type: bool, initial: false, option: true, description: Note everything.}
    n: {type: int, min: 0, max: 2, initial: 0, description: A count.}
  actions:
    work: {description: Work.}
    note: {description: Note.}
    finish: {description: Finish.}
  transitions:
    - {from: idle, on: start, to: busy, do: [work]}
    - {from: idle, on: [result, check], outcome: "*", reject: true, why: Not started.}
    - {from: busy, on: start, ignore: true}
    - {from: idle, on: stop, to: done}
    - {from: done, on: "*", ignore: true}
`
	short := head + `    - {from: busy, on: [result(ok), check(ok, odd)], to: done, do: [{on: check, do: [note]}, finish], set: {n: 1}}
    - from: busy
      on: [stop, result(bad, odd), "check(bad)"]
      when: n < 2
      to: done
      do: [{on: "result(odd)", when: loud, do: [note], set: {n: n + 1}}, {on: stop, do: [finish]}, work]
    - {from: busy, on: [stop, "result(bad, odd)", check(bad)], when: n == 2, to: done, do: [{on: stop, set: {n: 0}}, {on: check, set: {n: 1}}]}
`
	plain := head + `    - {from: busy, on: result, outcome: ok, to: done, do: [finish], set: {n: 1}}
    - {from: busy, on: check, outcome: [ok, odd], to: done, do: [note, finish], set: {n: 1}}
    - {from: busy, on: stop, when: n < 2, to: done, do: [finish, work]}
    - {from: busy, on: [result, check], outcome: bad, when: n < 2, to: done, do: [work]}
    - {from: busy, on: result, outcome: odd, when: n < 2 && loud, to: done, do: [note, work], set: {n: n + 1}}
    - {from: busy, on: result, outcome: odd, when: n < 2 && !loud, to: done, do: [work]}
    - {from: busy, on: stop, when: n == 2, to: done, set: {n: 0}}
    - {from: busy, on: result, outcome: [bad, odd], when: n == 2, to: done}
    - {from: busy, on: check, outcome: bad, when: n == 2, to: done, set: {n: 1}}
`
	load := func(src string) (*Package, *Machine) {
		pkg, err := Load(Source{Path: "m.yaml", Data: []byte(src)})
		if err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
		return pkg, pkg.Machines[0]
	}
	pkg, old := load(plain)
	_, cur := load(short)
	sameDeclarations(t, old, cur)
	equivalentRows(t, pkg, old, cur)
	if len(cur.Rows) != len(old.Rows) {
		t.Errorf("the trigger lists expand to %d rows, the plain table has %d", len(cur.Rows), len(old.Rows))
	}
}
