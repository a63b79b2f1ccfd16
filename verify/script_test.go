package verify_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fsmkernel/fsmkernel/gen"
	"github.com/fsmkernel/fsmkernel/verify"
)

// TestKernelScriptsOnTables runs the kernel's behaviour scripts, written for
// the generated machines, against the tables: the script runner of this
// package interprets the rows as the checker does, and must agree with the
// generated code on every script.
func TestKernelScriptsOnTables(t *testing.T) {
	pkg := loadFiles(t, nil, kernelSpecs...)
	files, err := filepath.Glob("../statemachine/testdata/behaviours/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no behaviour scripts in ../statemachine/testdata/behaviours")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, err := range verify.RunScript(pkg, f, src) {
				t.Error(err)
			}
		})
	}
}

// replayCounterexamples checks every violation of a machine's check as a
// script: written, it fails on the broken table at its last line, and passes on
// the fixed one. It returns the scripts by name.
func replayCounterexamples(t *testing.T, res *verify.Result, broken, fixed *gen.Package) map[string]string {
	t.Helper()
	scripts := map[string]string{}
	for _, v := range res.Violations {
		name, script, ok := v.Script()
		if !ok {
			t.Errorf("%s: no script for the violation of %s", res.Name, v.Property)
			continue
		}
		scripts[name] = string(script)
		lines := strings.Split(strings.TrimSuffix(string(script), "\n"), "\n")
		errs := verify.RunScript(broken, name+".txt", script)
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), fmt.Sprintf("%s.txt:%d: want ", name, len(lines))) {
			t.Errorf("%s on the broken table: want one failure, at its last line %d, got %q\n%s", name, len(lines), errs, script)
		}
		if errs := verify.RunScript(fixed, name+".txt", script); len(errs) != 0 {
			t.Errorf("%s on the fixed table: %q\n%s", name, errs, script)
		}
	}
	return scripts
}

// breakerEdits break the breaker of fsmgen's tests, one property each: in
// its YAML (old replaced by new), or in memory where the validator would
// refuse the YAML (no terminal state reachable, a cell without an answer).
var breakerEdits = []struct {
	name, old, new string
	mutate         func(m *gen.Machine)
	props          []string // the properties the check must report
}{
	{name: "opening keeps the count",
		old: "to: open, do: [trip], set: {failures: 0}}", new: "to: open, do: [trip]}",
		props: []string{verify.PropInvariants}},
	{name: "stop stops the timer twice",
		old: "to: stopped, do: [stopTimer],", new: "to: stopped, do: [stopTimer, stopTimer],",
		props: []string{verify.PropMultiplicity}},
	{name: "stop does nothing and an open breaker never cools down",
		mutate: func(m *gen.Machine) {
			for i := range m.Rows {
				r := &m.Rows[i]
				switch {
				case onEvent(m, r, "stop") && r.To == state(m, "stopped"):
					r.To, r.Do, r.Set = -1, nil, nil
				case onEvent(m, r, "cooledDown") && fromState(m, r, "open"):
					r.Kind, r.To = gen.RowIgnore, -1
				}
			}
		},
		props: []string{verify.PropNoDeadlock, verify.PropCanTerminate}},
	{name: "a failure while half open is not answered",
		mutate: func(m *gen.Machine) {
			m.Rows = slices.DeleteFunc(m.Rows, func(r gen.Row) bool {
				return fromState(m, &r, "halfOpen") && onEvent(m, &r, "called") && r.To == state(m, "open")
			})
		},
		props: []string{verify.PropTotal}},
}

func TestCounterexampleScriptsOfBreaker(t *testing.T) {
	const file = "../cmd/fsmgen/testdata/breaker.yaml"
	fixed := loadFiles(t, nil, file)
	for _, e := range breakerEdits {
		t.Run(e.name, func(t *testing.T) {
			pkg := loadFiles(t, func(_, src string) string {
				if e.old == "" {
					return src
				}
				if !strings.Contains(src, e.old) {
					t.Fatalf("breaker.yaml has no %q", e.old)
				}
				return strings.Replace(src, e.old, e.new, 1)
			}, file)
			if e.mutate != nil {
				e.mutate(pkg.Machines[0])
				gen.RebuildCells(pkg, pkg.Machines[0])
			}
			res, err := verify.CheckMachine(pkg, pkg.Machines[0], verify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range res.Violations {
				got = append(got, v.Property)
			}
			if !slices.Equal(got, e.props) {
				t.Fatalf("violations %q, want %q:\n%s", got, e.props, verify.Report([]*verify.Result{res}))
			}
			for name, s := range replayCounterexamples(t, res, pkg, fixed) {
				t.Logf("%s.txt:\n%s", name, s)
			}
		})
	}
}

// TestScriptRunner checks the runner on the breaker: a correct script passes,
// and every kind of wrong expectation or malformed line is reported with
// file:line.
func TestScriptRunner(t *testing.T) {
	pkg := loadFiles(t, nil, "../cmd/fsmgen/testdata/breaker.yaml")
	const good = `# a correct script
new b breaker
fire b called(failed)
want b actions
want b var failures=1
fire b called(timedOut)
fire b called(failed)
want b actions trip
want b state open
want b var failures=0
fire b called(ok)
want b rejected
step b called(ok)   # a step may be rejected
want b rejected
want b holds invariant countsOnlyWhenClosed
want b holds invariants
want b holds terminalReachable
want b holds noDeadlock
want b holds total
want b holds deterministic
want b holds inRange
want b holds multiplicities
want b holds order
want b holds terminalQuiet
fire b cooledDown
fire b called(ok)
want b actions reset
want b total trip=1 reset=1 stopTimer=0
fire b stop
want b actions stopTimer
want b state stopped
want b holds noDeadlock
`
	if errs := verify.RunScript(pkg, "good.txt", []byte(good)); len(errs) != 0 {
		t.Fatalf("a correct script failed: %v", errs)
	}
	cases := []struct {
		name, script string
		want         []string // substrings of the first error
	}{
		{"wrong actions", "new b breaker\nfire b stop\nwant b actions trip\n",
			[]string{"bad.txt:3:", "step: line 2: fire b stop", "got:  stopTimer", "want: trip"}},
		{"wrong state", "new b breaker\nfire b stop\nwant b state open\n", []string{"bad.txt:3:", "got:  stopped", "want: open"}},
		{"wrong var", "new b breaker\nfire b called(failed)\nwant b var failures=2\n", []string{"bad.txt:3:", "got:  failures=1", "want: failures=2"}},
		{"wrong total", "new b breaker\nfire b stop\nwant b total stopTimer=2\n", []string{"bad.txt:3:", "got:  stopTimer=1", "want: stopTimer=2"}},
		{"unexpected rejection", "new b breaker\nfire b called(failed)\nfire b called(failed)\nfire b called(failed)\nfire b called(ok)\nwant b actions\n",
			[]string{"bad.txt:5:", "unexpected rejection"}},
		{"missing rejection", "new b breaker\nfire b stop\nwant b rejected\n", []string{"bad.txt:3:", "got:  actions stopTimer", "want: a rejection"}},
		{"unknown invariant", "new b breaker\nwant b holds invariant nope\n", []string{"bad.txt:2:", `no invariant "nope" (invariants: countsOnlyWhenClosed)`}},
		{"unknown obligation", "new b breaker\nwant b holds obligation nope\n", []string{"bad.txt:2:", `no obligation "nope"`}},
		{"unknown property", "new b breaker\nwant b holds safety\n", []string{"bad.txt:2:", "want NAME holds invariant INV|"}},
		{"unknown event", "new b breaker\nstep b call\n", []string{"bad.txt:2:", `unknown event "call"`}},
		{"unknown outcome", "new b breaker\nfire b called(fine)\n", []string{"bad.txt:2:", `unknown outcome "fine"`}},
		{"missing outcome", "new b breaker\nfire b called\n", []string{"bad.txt:2:", "needs an outcome: called(ok|timedOut|failed)"}},
		{"outcome of an event without", "new b breaker\nfire b stop(ok)\n", []string{"bad.txt:2:", "carries no outcome"}},
		{"unknown action", "new b breaker\nfire b stop\nwant b actions stop\n", []string{"bad.txt:3:", `unknown action "stop"`}},
		{"unknown option", "new b breaker failures=1\n", []string{"bad.txt:1:", `no option "failures"`}},
		{"unknown machine", "new b socket\n", []string{"bad.txt:1:", `unknown machine "socket" (breaker)`}},
		{"unknown command", "new b breaker\nfires b stop\n", []string{"bad.txt:2:", `unknown command "fires"`}},
		{"unknown instance", "new b breaker\nstep c stop\n", []string{"bad.txt:2:", `no instance "c"`}},
		{"a request to a machine", "new b breaker\nstep b x asks b.stop\n", []string{"bad.txt:2:", "want: step NAME event[(outcome)]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := verify.RunScript(pkg, "bad.txt", []byte(c.script))
			if len(errs) == 0 {
				t.Fatalf("runner reported no error for:\n%s", c.script)
			}
			msg := errs[0].Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

// TestScriptStepNotTaken: a step that breaks a property is not taken, as the
// search does not take it; a fire moves as the generated machine would.
func TestScriptStepNotTaken(t *testing.T) {
	pkg := loadFiles(t, func(_, src string) string {
		return strings.Replace(src, "do: [stopTimer], set: {failures: 0}}", "do: [stopTimer, stopTimer], set: {failures: 0}}", 1)
	}, "../cmd/fsmgen/testdata/breaker.yaml")
	const script = `# stop performs stopTimer twice
new s breaker
step s stop
want s actions stopTimer stopTimer
want s state closed
want s total stopTimer=0
new f breaker
fire f stop
want f state stopped
want f total stopTimer=2
want f holds multiplicities
`
	errs := verify.RunScript(pkg, "broken.txt", []byte(script))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "broken.txt:11: want f holds multiplicities") || !strings.Contains(errs[0].Error(), "broken at line 8 (fire f stop)") {
		t.Fatalf("want one failure at line 11, got %q", errs)
	}
}

// TestCounterexampleScriptsOfToyProduct: the toy product broken in one place
// at a time, as a mistaken edit would; every violation of the product and of
// its machines is a script that fails on the broken tables and passes on the
// toy's.
func TestCounterexampleScriptsOfToyProduct(t *testing.T) {
	fixed := loadFiles(t, nil, toy...)
	cases := []struct{ name, file, from, to string }{
		{"registration after stop is ignored, not refused", "toyloop.yaml",
			"- {from: stopped, on: register, reject: true, why: the loop is gone; the caller gets an error}\n    - {from: stopped, on: [closed, shutdown, fail], ignore: true}",
			`- {from: stopped, on: "*", ignore: true}`},
		{"the loop stops with channels open", "toyloop.yaml",
			"- {from: draining, on: shutdown, ignore: true}", "- {from: draining, on: shutdown, to: stopped}"},
		{"loop failure does not reach the channels", "toyproduct.yaml",
			"    - {from: loop, action: failChannels, to: channel, event: loopFailed}\n", ""},
		{"a closing channel closes its descriptor twice", "toychannel.yaml",
			"- {from: active, on: loopFailed, to: closed, do: [closeFD]}", "- {from: active, on: loopFailed, to: closed, do: [closeFD, closeFD]}"},
		{"the loop refuses without telling the sender", "toyproduct.yaml",
			"    - {from: loop, action: refuse, to: sender, event: refused}\n", ""},
		{"a refused registration is a violation", "toyproduct.yaml", ", onReject: refused}", "}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkg := loadFiles(t, func(name, src string) string {
				if name != c.file {
					return src
				}
				if !strings.Contains(src, c.from) {
					t.Fatalf("%s has no %q", name, c.from)
				}
				return strings.Replace(src, c.from, c.to, 1)
			}, toy...)
			var results []*verify.Result
			for _, m := range pkg.Machines {
				res, err := verify.CheckMachine(pkg, m, verify.Options{})
				if err != nil {
					t.Fatal(err)
				}
				results = append(results, res)
			}
			for _, n := range []int{2, 3} {
				res, err := verify.CheckProduct(pkg, pkg.Products[0], verify.Options{Counts: map[string]int{"channel": n}})
				if err != nil {
					t.Fatal(err)
				}
				if res.OK() {
					t.Fatalf("channels=%d: the mutation is not caught", n)
				}
				results = append(results, res)
			}
			for _, res := range results {
				for name, s := range replayCounterexamples(t, res, pkg, fixed) {
					t.Logf("%s.txt:\n%s", name, s)
				}
			}
		})
	}
}

// TestProductScriptRunner checks the runner on products: a correct script of
// the toy passes, and malformed lines are reported with file:line.
func TestProductScriptRunner(t *testing.T) {
	pkg := loadFiles(t, nil, toy...)
	const good = `# a correct script
new p toy channel=2
want p holds terminalReachable
step p channel[0].open
step p channel[1].open
want p holds syncAccepted
want p holds outlives
want p holds invariants
want p holds noDeadlock
step p loop.shutdown
step p channel[0].close
step p channel[1].close
want p holds terminalReachable
want p holds noDeadlock
want p holds multiplicities
`
	if errs := verify.RunScript(pkg, "good.txt", []byte(good)); len(errs) != 0 {
		t.Fatalf("a correct script failed: %v", errs)
	}
	kernel := loadFiles(t, nil, kernelSpecs...)
	cases := []struct {
		pkg          *gen.Package
		name, script string
		want         []string // substrings of the first error
	}{
		{pkg, "fire", "new p toy\nfire p loop.shutdown\n", []string{"bad.txt:2:", "use step, not fire"}},
		{pkg, "want state", "new p toy\nwant p state running\n", []string{"bad.txt:2:", `want only "want p holds PROPERTY"`}},
		{pkg, "unknown instance", "new p toy\nstep p channel[3].open\n", []string{"bad.txt:2:", `no instance "channel[3]" (instances: loop, channel[0], channel[1], channel[2])`}},
		{pkg, "one instance has no number", "new p toy channel=1\nstep p channel[0].open\n", []string{"bad.txt:2:", `no instance "channel[0]" (instances: loop, channel)`}},
		{pkg, "no instance", "new p toy\nstep p open\n", []string{"bad.txt:2:", "want instance.event[(outcome)]"}},
		{pkg, "internal event", "new p toy\nstep p loop.register\n", []string{"bad.txt:2:", "internal: only a synchronisation delivers it"}},
		{pkg, "unknown component", "new p toy socket=2\n", []string{"bad.txt:1:", `no component "socket"`}},
		{pkg, "count out of range", "new p toy channel=9\n", []string{"bad.txt:1:", "N from 1 to 8"}},
		{pkg, "unknown option", "new p toy loop.open=1\n", []string{"bad.txt:1:", `no option "open"`}},
		{pkg, "unknown obligation", "new p toy\nwant p holds obligation x\n", []string{"bad.txt:2:", `product toy has no obligation "x"`}},
		{pkg, "unknown invariant", "new p toy\nwant p holds invariant x\n", []string{"bad.txt:2:", `no machine of product toy has an invariant "x"`}},
		{kernel, "an option the product fixes", "new k kernel channel[0].autoRead=false\n", []string{"bad.txt:1:", "kernel fixes it to true"}},
		{kernel, "not a request", "new k kernel\nstep k loop asks channel[0].registered(ok)\n", []string{"bad.txt:2:", "no request of loop to channel[0].registered(ok)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := verify.RunScript(c.pkg, "bad.txt", []byte(c.script))
			if len(errs) == 0 {
				t.Fatalf("runner reported no error for:\n%s", c.script)
			}
			msg := errs[0].Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
	// A request the environment cannot make now does nothing.
	const early = "new k kernel\nstep k channel[0] asks loop.registerChannel\nwant k holds syncAccepted\n"
	if errs := verify.RunScript(kernel, "early.txt", []byte(early)); len(errs) != 0 {
		t.Errorf("a request before the loop started: %v", errs)
	}
}
