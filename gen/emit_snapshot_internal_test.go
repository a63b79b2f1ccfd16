package gen

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// loadSnapshotSpec loads spec (one machine) and returns its machine.
func loadSnapshotSpec(t *testing.T, spec string) (*Package, *Machine) {
	t.Helper()
	pkg, err := Load(Source{Path: "conn.yaml", Data: []byte(spec)})
	if err != nil {
		t.Fatal(err)
	}
	return pkg, pkg.Machines[0]
}

// The binary header names the format, the machine and the layout of its
// configurations: editing what a snapshot's bytes mean (states, variables, their
// values) changes the table fingerprint; editing what the table does with them
// (rows, actions, options, initial values, descriptions) does not, and leaves
// judging old snapshots to the reachability check. Renaming the machine changes
// both fingerprints.
func TestSnapshotFingerprint(t *testing.T) {
	src, err := os.ReadFile("testdata/conn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, base := loadSnapshotSpec(t, string(src))
	h := snapshotHeader(base)
	if h[0] != 1 {
		t.Fatalf("format version %d, want 1", h[0])
	}
	for _, c := range []struct {
		what          string
		edits         []string // old, new, ...
		machine, kind bool     // whether the machine and table fingerprints change
	}{
		{"a state renamed", []string{"connecting", "dialing"}, false, true},
		{"a variable added", []string{"  actions:\n", "    extra: {type: bool, initial: false, description: Unused.}\n  actions:\n"}, false, true},
		{"a variable renamed", []string{"reads", "count"}, false, true},
		{"an int's range", []string{"max: 3", "max: 4", "reads < 3", "reads < 4", "reads == 3", "reads == 4"}, false, true},
		{"the machine renamed", []string{"name: conn", "name: link"}, true, true},
		{"a row's reason", []string{"why: spurious readiness", "why: nothing to read"}, false, false},
		{"an option made a plain variable", []string{"      option: true\n", ""}, false, false},
		{"an action added", []string{"    closeFD: {description: close(2) the descriptor., max: 1}\n", "    closeFD: {description: close(2) the descriptor., max: 1}\n    flush: {description: Flush.}\n"}, false, false},
		{"a description", []string{"The peer's EOF was seen.", "EOF seen."}, false, false},
	} {
		for i := 0; i < len(c.edits); i += 2 {
			if !strings.Contains(string(src), c.edits[i]) {
				t.Fatalf("%s: testdata/conn.yaml has no %q", c.what, c.edits[i])
			}
		}
		spec := strings.NewReplacer(c.edits...).Replace(string(src))
		_, m := loadSnapshotSpec(t, spec)
		got := snapshotHeader(m)
		if changed := string(got[1:5]) != string(h[1:5]); changed != c.machine {
			t.Errorf("%s: machine fingerprint changed %v, want %v", c.what, changed, c.machine)
		}
		if changed := string(got[5:9]) != string(h[5:9]); changed != c.kind {
			t.Errorf("%s: table fingerprint changed %v, want %v\n%s", c.what, changed, c.kind, snapshotLayoutText(m))
		}
	}
}

// The reachable configurations are embedded in the smaller of two forms: a
// sorted list of their numbers when they are sparse (the channel), a bitset when
// they are dense (conn), and nothing when every configuration is reachable.
func TestReachableSetForm(t *testing.T) {
	var srcs []Source
	for _, p := range []string{"../spec/outcomes.yaml", "../spec/errno.yaml", "../spec/eventloop.yaml", "../spec/channel.yaml", "../spec/listener.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, Source{Path: p, Data: b})
	}
	kernel, err := Load(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("testdata/conn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	conn, connM := loadSnapshotSpec(t, string(src))
	all, allM := loadSnapshotSpec(t, `machine:
  name: flag
  description: Every configuration is reachable.
  states:
    up: {description: Up., initial: true}
    down: {description: Down., terminal: true}
  events:
    stop: {description: Stop.}
  transitions:
    - {from: up, on: stop, to: down}
    - {from: down, on: stop, ignore: true}
`)
	for _, c := range []struct {
		pkg        *Package
		m          *Machine
		list, bits bool
	}{
		{kernel, machineNamed(t, kernel, "channel"), true, false},
		{conn, connM, false, true},
		{all, allM, false, false},
	} {
		r, err := reachableSet(c.pkg, c.m)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := Explore(c.pkg, c.m)
		if (r.list != nil) != c.list || (r.bits != nil) != c.bits || r.count != len(g.Order) {
			t.Errorf("%s: list %v bits %v count %d, want list %v bits %v count %d", c.m.Name, r.list != nil, r.bits != nil, r.count, c.list, c.bits, len(g.Order))
		}
		for _, id := range g.Order {
			in := false
			switch {
			case r.list != nil:
				_, in = slices.BinarySearch(r.list, uint32(id))
			case r.bits != nil:
				in = r.bits[id/64]>>(id%64)&1 != 0
			default:
				in = true
			}
			if !in {
				t.Fatalf("%s: reachable configuration %s is not in the set", c.m.Name, g.Space.Describe(id))
			}
		}
	}
}

func machineNamed(t *testing.T, pkg *Package, name string) *Machine {
	t.Helper()
	for _, m := range pkg.Machines {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no machine %s", name)
	return nil
}
