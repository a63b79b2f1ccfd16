package verify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmkernel/fsmkernel/gen"
	"github.com/fsmkernel/fsmkernel/verify"
)

func loadFiles(t *testing.T, edit func(name, src string) string, paths ...string) *gen.Package {
	t.Helper()
	var srcs []gen.Source
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		if edit != nil {
			src = edit(filepath.Base(p), src)
		}
		srcs = append(srcs, gen.Source{Path: p, Data: []byte(src)})
	}
	pkg, err := gen.Load(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

var toy = []string{"testdata/toyloop.yaml", "testdata/toychannel.yaml", "testdata/toyproduct.yaml"}

func TestCheckConnExample(t *testing.T) {
	pkg := loadFiles(t, nil, "../gen/testdata/conn.yaml")
	res, err := verify.CheckMachine(pkg, pkg.Machines[0], verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatal(verify.Report([]*verify.Result{res}))
	}
	g, err := gen.Explore(pkg, pkg.Machines[0])
	if err != nil {
		t.Fatal(err)
	}
	if res.Configs != len(g.Order) {
		t.Errorf("checker found %d configurations, gen.Explore %d", res.Configs, len(g.Order))
	}
}

func TestToyProduct(t *testing.T) {
	pkg := loadFiles(t, nil, toy...)
	for _, n := range []int{1, 2, 3, 4} {
		res, err := verify.CheckProduct(pkg, pkg.Products[0], verify.Options{Counts: map[string]int{"channel": n}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() {
			t.Fatalf("channels=%d:\n%s", n, verify.Report([]*verify.Result{res}))
		}
		if n == 3 && !strings.Contains(res.Name, "channel x3") {
			t.Errorf("result name %q does not say the instance count", res.Name)
		}
	}
}

// violation checks the search reports prop with a trace ending as wantTail.
func violation(t *testing.T, res *verify.Result, prop, wantTail string) {
	t.Helper()
	for _, v := range res.Violations {
		if v.Property == prop {
			if len(v.Trace) < 2 || !strings.HasSuffix(strings.Join(v.Trace, " -> "), wantTail) {
				t.Errorf("%s: trace %q does not end with %q", prop, strings.Join(v.Trace, " -> "), wantTail)
			}
			return
		}
	}
	t.Errorf("no %q violation reported:\n%s", prop, verify.Report([]*verify.Result{res}))
}

func TestToyMutations(t *testing.T) {
	cases := []struct {
		name, file, from, to, prop, trace string
	}{
		{
			name: "registration after stop is ignored, not refused",
			file: "toyloop.yaml",
			from: "- {from: stopped, on: register, reject: true, why: the loop is gone; the caller gets an error}\n    - {from: stopped, on: [closed, shutdown, fail], ignore: true}",
			to:   `- {from: stopped, on: "*", ignore: true}`,
			prop: verify.PropOutlives, trace: "start -> loop.shutdown -> channel[0].open",
		},
		{
			name: "the loop stops with channels open",
			file: "toyloop.yaml",
			from: "- {from: draining, on: shutdown, ignore: true}",
			to:   "- {from: draining, on: shutdown, to: stopped}",
			prop: verify.PropOutlives, trace: "start -> channel[0].open -> loop.shutdown -> loop.shutdown",
		},
		{
			name: "loop failure does not reach the channels",
			file: "toyproduct.yaml",
			from: "    - {from: loop, action: failChannels, to: channel, event: loopFailed}\n",
			to:   "",
			prop: verify.PropOutlives, trace: "start -> channel[0].open -> loop.fail",
		},
		{
			name: "a closing channel closes its descriptor twice",
			file: "toychannel.yaml",
			from: "- {from: active, on: loopFailed, to: closed, do: [closeFD]}",
			to:   "- {from: active, on: loopFailed, to: closed, do: [closeFD, closeFD]}",
			prop: verify.PropMultiplicity, trace: "start -> channel[0].open -> loop.fail",
		},
		{
			name: "the loop refuses without telling the sender",
			file: "toyproduct.yaml",
			from: "    - {from: loop, action: refuse, to: sender, event: refused}\n",
			to:   "",
			prop: verify.PropNoDeadlock, trace: "",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			applied := false
			pkg := loadFiles(t, func(name, src string) string {
				if name != c.file {
					return src
				}
				out := strings.Replace(src, c.from, c.to, 1)
				applied = out != src
				return out
			}, toy...)
			if !applied {
				t.Fatalf("mutation did not apply to %s", c.file)
			}
			res, err := verify.CheckProduct(pkg, pkg.Products[0], verify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			violation(t, res, c.prop, c.trace)
		})
	}
}

func TestActionOrderMonitors(t *testing.T) {
	spec := `
outcomes:
  r: {description: R., values: {data: D., none: N.}}
machine:
  name: reader
  description: A read cycle.
  states:
    on: {description: On., initial: true}
    off: {description: Off., terminal: true}
  events:
    readable: {description: R., outcome: r}
    bad: {description: EBADF., abnormal: true}
  variables:
    got: {type: bool, initial: false, description: A read in this cycle.}
  actions:
    read: {description: Deliver.}
    complete: {description: End of cycle., after: read}
    closeFD: {description: Close., max: 1, notAfter: bad}
  transitions:
    - {from: on, on: readable, outcome: data, do: [read], set: {got: true}}
    - {from: on, on: readable, outcome: none, when: got, do: [complete], set: {got: false}}
    - {from: on, on: readable, outcome: none, when: "!got", ignore: true}
    - {from: on, on: bad, to: off}
    - {from: off, on: "*", outcome: "*", ignore: true}
`
	check := func(src string) *verify.Result {
		t.Helper()
		pkg, err := gen.Load(gen.Source{Path: "reader.yaml", Data: []byte(src)})
		if err != nil {
			t.Fatal(err)
		}
		res, err := verify.CheckMachine(pkg, pkg.Machines[0], verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := check(spec); !res.OK() {
		t.Fatal(verify.Report([]*verify.Result{res}))
	}
	empty := strings.Replace(spec, `when: "!got", ignore: true`, `when: "!got", do: [complete]`, 1)
	violation(t, check(empty), verify.PropOrder, "start -> readable(none)")
	closeAfterBad := strings.Replace(spec, "{from: on, on: bad, to: off}", "{from: on, on: bad, to: off, do: [closeFD]}", 1)
	violation(t, check(closeAfterBad), verify.PropOrder, "start -> bad")
	inv := strings.Replace(spec, "  transitions:", "  invariants:\n    never: {description: Broken on purpose., expr: \"!got\"}\n  transitions:", 1)
	violation(t, check(inv), verify.PropInvariants, "start -> readable(data)")
}
