package gen_test

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/fsmkernel/fsmkernel/gen"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// The snapshot methods of the kernel's generated machines, in statemachine/,
// against the explorer's view of their tables: the configurations they restore
// are exactly the reachable ones, and each one saves and restores in both forms.
// testdata/run/snapshot_test.go.txt tests the same on testdata/conn.yaml with
// every message spelled out.

// snapshotter is the snapshot API every generated machine has.
type snapshotter interface {
	encoding.BinaryAppender
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
	encoding.TextAppender
	encoding.TextMarshaler
	encoding.TextUnmarshaler
}

// kernelMachines returns a constructor of each generated kernel machine, in its
// initial configuration with the default options.
func kernelMachines() map[string]func() snapshotter {
	return map[string]func() snapshotter{
		"channel": func() snapshotter {
			m, err := sm.NewChannel(sm.DefaultChannelOptions())
			if err != nil {
				panic(err)
			}
			return &m
		},
		"eventloop": func() snapshotter {
			m, err := sm.NewEventloop(sm.DefaultEventloopOptions())
			if err != nil {
				panic(err)
			}
			return &m
		},
		"listener": func() snapshotter {
			m, err := sm.NewListener(sm.DefaultListenerOptions())
			if err != nil {
				panic(err)
			}
			return &m
		},
	}
}

// loadKernel loads the kernel's tables.
func loadKernel(tb testing.TB) *gen.Package {
	tb.Helper()
	var srcs []gen.Source
	for _, p := range kernelSpecs {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		srcs = append(srcs, gen.Source{Path: p, Data: b})
	}
	pkg, err := gen.Load(srcs...)
	if err != nil {
		tb.Fatal(err)
	}
	return pkg
}

// snapshotModel is a machine of the IR with its reachable configurations and
// the header of its binary snapshots.
type snapshotModel struct {
	m         *gen.Machine
	g         *gen.Graph
	reachable map[int]bool
	header    []byte
}

func newSnapshotModel(t testing.TB, pkg *gen.Package, name string, fresh func() snapshotter) *snapshotModel {
	t.Helper()
	var m *gen.Machine
	for _, x := range pkg.Machines {
		if x.Name == name {
			m = x
		}
	}
	if m == nil {
		t.Fatalf("no machine %s", name)
	}
	g, err := gen.Explore(pkg, m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fresh().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 9+1+len(m.Vars) {
		t.Fatalf("%s: snapshot of %d bytes, want 9 + 1 + %d variables", name, len(b), len(m.Vars))
	}
	r := map[int]bool{}
	for _, id := range g.Order {
		r[id] = true
	}
	return &snapshotModel{m: m, g: g, reachable: r, header: b[:9]}
}

// binary returns the binary snapshot of configuration id as the format defines
// it: the header, the state's byte, then one byte per variable.
func (s *snapshotModel) binary(id int) []byte {
	vals := make([]int, len(s.m.Vars))
	state := s.g.Space.Decode(id, vals)
	b := append([]byte(nil), s.header...)
	b = append(b, byte(state))
	for _, v := range vals {
		b = append(b, byte(v))
	}
	return b
}

// text returns the text snapshot of configuration id as the format defines it.
func (s *snapshotModel) text(id int) string {
	vals := make([]int, len(s.m.Vars))
	state := s.g.Space.Decode(id, vals)
	out := s.m.Name + " v1 state=" + s.m.States[state].Name
	for i, v := range s.m.Vars {
		out += " " + v.Name + "="
		switch v.Kind {
		case gen.KindBool:
			out += strconv.FormatBool(vals[i] != 0)
		case gen.KindEnum:
			out += v.Values[vals[i]].Name
		default:
			out += strconv.Itoa(vals[i])
		}
	}
	return out
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func marshal(t testing.TB, m snapshotter) ([]byte, string) {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	txt, err := m.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return b, string(txt)
}

// Every reachable configuration of each kernel machine restores from its binary
// and from its text snapshot, and saves back to the same bytes and text, which
// are the format's: the header, one byte per field; the names in declaration order.
func TestKernelSnapshotsRoundTrip(t *testing.T) {
	pkg := loadKernel(t)
	for name, fresh := range kernelMachines() {
		s := newSnapshotModel(t, pkg, name, fresh)
		for _, id := range s.g.Order {
			wantB, wantT := s.binary(id), s.text(id)
			m := fresh()
			if err := m.UnmarshalBinary(wantB); err != nil {
				t.Fatalf("%s: UnmarshalBinary of reachable %s: %v", name, wantT, err)
			}
			if b, txt := marshal(t, m); !bytes.Equal(b, wantB) || txt != wantT {
				t.Fatalf("%s: restored from binary, saves\n%x %s\nwant\n%x %s", name, b, txt, wantB, wantT)
			}
			m = fresh()
			if err := m.UnmarshalText([]byte(wantT)); err != nil {
				t.Fatalf("%s: UnmarshalText of reachable %s: %v", name, wantT, err)
			}
			if b, txt := marshal(t, m); !bytes.Equal(b, wantB) || txt != wantT {
				t.Fatalf("%s: restored from text, saves\n%x %s\nwant\n%x %s", name, b, txt, wantB, wantT)
			}
			ab, _ := m.AppendBinary([]byte("x"))
			at, _ := m.AppendText([]byte("x"))
			if string(ab) != "x"+string(wantB) || string(at) != "x"+wantT {
				t.Fatalf("%s: AppendBinary and AppendText do not append what Marshal returns", name)
			}
		}
		t.Logf("%s: %d reachable configurations round trip; binary snapshot %d bytes", name, len(s.g.Order), len(s.header)+1+len(s.m.Vars))
	}
}

// Of all the configurations whose fields are in range, the kernel machines
// restore exactly the reachable ones, and refuse the others naming the first
// invariant they break or, when they break none, as unreachable; a refusal
// leaves the machine as it was. The messages of refusals for a broken invariant
// are checked on a sample of them (every 97th), all the others on every one.
func TestKernelSnapshotsRestoreOnlyReachable(t *testing.T) {
	pkg := loadKernel(t)
	for name, fresh := range kernelMachines() {
		s := newSnapshotModel(t, pkg, name, fresh)
		m := fresh()
		before, _ := marshal(t, m)
		vals := make([]int, len(s.m.Vars))
		data := bytes.Clone(before)
		refused, unreachable := 0, 0
		for id := 0; id < s.g.Space.Len(); id++ {
			state := s.g.Space.Decode(id, vals)
			data[9] = byte(state)
			for i, v := range vals {
				data[10+i] = byte(v)
			}
			err := m.UnmarshalBinary(data)
			if s.reachable[id] {
				if err != nil {
					t.Fatalf("%s: reachable %s refused: %v", name, s.text(id), err)
				}
				if err := m.UnmarshalBinary(before); err != nil {
					t.Fatal(err)
				}
				continue
			}
			refused++
			var se *sm.SnapshotError
			if !errors.As(err, &se) || se.Foreign || se.Machine != name {
				t.Fatalf("%s: %s restored with error %#v", name, s.text(id), err)
			}
			var inv *gen.Invariant
			for i := range s.m.Invariants {
				if s.m.Invariants[i].Expr.Eval(state, vals) == 0 {
					inv = &s.m.Invariants[i]
					break
				}
			}
			if inv != nil && refused%97 != 0 {
				continue
			}
			var want string
			if inv != nil {
				want = name + ": snapshot rejected: invariant " + inv.Name + " violated: " + inv.Expr.Format(s.m)
			} else {
				unreachable++
				want = name + ": snapshot rejected: unreachable: no run of the table from an initial configuration reaches " + strings.TrimPrefix(s.text(id), name+" v1 ")
			}
			if err.Error() != want {
				t.Fatalf("%s: %s restored with error %q, want %q", name, s.text(id), err, want)
			}
			if err := m.UnmarshalText([]byte(s.text(id))); err == nil || err.Error() != want {
				t.Fatalf("%s: text %s restored with error %v, want %q", name, s.text(id), err, want)
			}
			if b, _ := marshal(t, m); !bytes.Equal(b, before) {
				t.Fatalf("%s: a refused snapshot changed the machine", name)
			}
		}
		t.Logf("%s: of %d configurations in range, %d refused, %d of them satisfy the invariants", name, s.g.Space.Len(), refused, unreachable)
	}
}

// The configurations the channel's table reaches are those the generated
// machine reaches: a search over Fire from the initial configurations (every
// combination of options) finds the same set the explorer embedded, so a
// snapshot saved from any run restores.
func TestChannelReachableByFire(t *testing.T) {
	pkg := loadKernel(t)
	s := newSnapshotModel(t, pkg, "channel", kernelMachines()["channel"])
	seen := map[string]bool{}
	var queue []sm.Channel
	add := func(m sm.Channel) {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !seen[string(b)] {
			seen[string(b)] = true
			queue = append(queue, m)
		}
	}
	// The initial configurations, one per combination of options, restored
	// from their snapshots: the options' Go types differ from table to table.
	for _, id := range s.g.Space.Initial() {
		var m sm.Channel
		if err := m.UnmarshalBinary(s.binary(id)); err != nil {
			t.Fatalf("initial %s: %v", s.text(id), err)
		}
		add(m)
	}
	if def, _ := sm.NewChannel(sm.DefaultChannelOptions()); len(queue) != len(s.g.Space.Initial()) || !seen[string(must(def.MarshalBinary()))] {
		t.Fatalf("NewChannel(DefaultChannelOptions()) is not among the %d initial configurations", len(queue))
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for ev := range sm.ChannelEventCount {
			for out := uint8(0); ; out++ {
				next := cur
				_, err := next.Fire(sm.ChannelEvent(ev), out)
				if errors.Is(err, sm.ErrUnknownOutcome) {
					break
				}
				if err == nil {
					add(next)
				}
			}
		}
	}
	if len(seen) != len(s.g.Order) {
		t.Errorf("Fire reaches %d configurations, the explorer %d", len(seen), len(s.g.Order))
	}
	for _, id := range s.g.Order {
		if !seen[string(s.binary(id))] {
			t.Errorf("the explorer reaches %s, Fire does not", s.text(id))
		}
	}
}

// Each way a snapshot can be wrong is refused with a *SnapshotError naming what
// is wrong, and leaves the machine as it was: damage, another machine or table
// version (Foreign), values out of range, and in the text form unknown,
// repeated and missing fields and unknown values.
func TestChannelSnapshotRejections(t *testing.T) {
	pkg := loadKernel(t)
	fresh := kernelMachines()["channel"]
	s := newSnapshotModel(t, pkg, "channel", fresh)
	m := fresh()
	good, goodText := marshal(t, m)
	loop, _ := marshal(t, kernelMachines()["eventloop"]())
	edit := func(i int, x byte) []byte {
		b := bytes.Clone(good)
		b[i] = x
		return b
	}
	field := func(name string) int {
		for i, v := range s.m.Vars {
			if v.Name == name {
				return 10 + i
			}
		}
		t.Fatalf("channel has no variable %s", name)
		return 0
	}
	hex := func(b []byte) string { return fmt.Sprintf("%x", b) }
	n := len(good) // a header of 10 bytes, then one per variable
	var states []string
	for _, st := range s.m.States {
		states = append(states, st.Name)
	}
	for _, c := range []struct {
		data    []byte
		want    string
		foreign bool
	}{
		{nil, fmt.Sprintf("empty: a snapshot has %d bytes", n), false},
		{edit(0, 2), "format version 2; this code reads version 1", true},
		{good[:5], fmt.Sprintf("truncated: 5 bytes of %d", n), false},
		{loop, "taken of another machine (machine fingerprint " + hex(loop[1:5]) + ", want " + hex(good[1:5]) + ")", true},
		{edit(8, good[8]^1), "taken of another version of the table (table fingerprint " + hex(append(bytes.Clone(good[5:8]), good[8]^1)) + ", want " + hex(good[5:9]) + ")", true},
		{good[:n-1], fmt.Sprintf("truncated: %d bytes of %d", n-1, n), false},
		{append(bytes.Clone(good), 0), fmt.Sprintf("extra bytes: %d bytes instead of %d", n+1, n), false},
		{edit(9, byte(len(states))), fmt.Sprintf("state: %d is out of range 0..%d (%s)", len(states), len(states)-1, strings.Join(states, ", ")), false},
		{edit(field("autoRead"), 2), "variable autoRead: 2 is out of range 0..1 (false, true)", false},
		{edit(field("output"), 255), "variable output: 255 is out of range 0..2 (idle, flushing, armed)", false},
	} {
		err := m.UnmarshalBinary(c.data)
		var se *sm.SnapshotError
		if !errors.As(err, &se) || err.Error() != "channel: snapshot rejected: "+c.want || se.Foreign != c.foreign {
			t.Errorf("UnmarshalBinary(%x): %#v\nwant %q, foreign %v", c.data, err, c.want, c.foreign)
		}
		if b, _ := marshal(t, m); !bytes.Equal(b, good) {
			t.Fatalf("a refused snapshot changed the machine")
		}
	}
	replace := func(old, new string) string {
		if !strings.Contains(goodText, old) {
			t.Fatalf("%q has no %q", goodText, old)
		}
		return strings.Replace(goodText, old, new, 1)
	}
	for _, c := range []struct {
		text    string
		want    string
		foreign bool
	}{
		{" \n\t", "empty text", false},
		{strings.Replace(goodText, "channel", "listener", 1), `taken of another machine: the text starts with "listener"`, true},
		{"channel", "no format version after the machine's name", false},
		{replace(" v1 ", " v2 "), `format version "v2"; this code reads v1`, true},
		{replace(" autoRead=true", " autoRead"), `"autoRead" is not name=value`, false},
		{goodText + " color=red", `unknown variable "color"`, false},
		{goodText + " autoRead=false", "variable autoRead given twice", false},
		{goodText + " state=closed", "state given twice", false},
		{replace(" autoRead=true", ""), "variable autoRead missing", false},
		{replace(" state=fresh", ""), "state missing", false},
		{replace("autoRead=true", "autoRead=yes"), `variable autoRead: unknown value "yes"; one of false, true`, false},
		{replace("output=idle", "output=full"), `variable output: unknown value "full"; one of idle, flushing, armed`, false},
		{replace("state=fresh", "state="), `state: unknown value ""; one of ` + strings.Join(states, ", "), false},
	} {
		err := m.UnmarshalText([]byte(c.text))
		var se *sm.SnapshotError
		if !errors.As(err, &se) || err.Error() != "channel: snapshot rejected: "+c.want || se.Foreign != c.foreign {
			t.Errorf("UnmarshalText(%q): %#v\nwant %q, foreign %v", c.text, err, c.want, c.foreign)
		}
		if b, _ := marshal(t, m); !bytes.Equal(b, good) {
			t.Fatalf("a refused snapshot changed the machine")
		}
	}
	// Fields in another order and other white space read the same.
	f := strings.Fields(goodText)
	for i, j := 2, len(f)-1; i < j; i, j = i+1, j-1 {
		f[i], f[j] = f[j], f[i]
	}
	if err := m.UnmarshalText([]byte("\n  " + strings.Join(f, "\t \n") + "\n")); err != nil {
		t.Errorf("reordered text: %v", err)
	}
	if b, _ := marshal(t, m); !bytes.Equal(b, good) {
		t.Errorf("reordered text restored another configuration")
	}
}

// Saving with room in the buffer and restoring do not allocate; Marshal
// allocates its result once.
func TestChannelSnapshotAllocations(t *testing.T) {
	m := kernelMachines()["channel"]()
	b, txt := marshal(t, m)
	text := []byte(txt)
	buf := make([]byte, 0, 512)
	for name, f := range map[string]func(){
		"AppendBinary":    func() { buf, _ = m.AppendBinary(buf[:0]) },
		"AppendText":      func() { buf, _ = m.AppendText(buf[:0]) },
		"UnmarshalBinary": func() { _ = m.UnmarshalBinary(b) },
		"UnmarshalText":   func() { _ = m.UnmarshalText(text) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
	for name, f := range map[string]func(){
		"MarshalBinary": func() { _, _ = m.MarshalBinary() },
		"MarshalText":   func() { _, _ = m.MarshalText() },
	} {
		if n := testing.AllocsPerRun(100, f); n != 1 {
			t.Errorf("%s: %v allocations, want 1", name, n)
		}
	}
}

// FuzzChannelSnapshot feeds arbitrary bytes to the channel's UnmarshalBinary and
// UnmarshalText. Nothing panics; a refusal is a *SnapshotError that leaves the
// machine as it was; what restores is a reachable configuration, saves back to
// the same binary snapshot and round trips through the other form. The seeds
// (run by go test) are snapshots of configurations along a walk, whole and damaged.
func FuzzChannelSnapshot(f *testing.F) {
	pkg := loadKernel(f)
	fresh := kernelMachines()["channel"]
	s := newSnapshotModel(f, pkg, "channel", fresh)
	reachable := map[string]bool{}
	for _, id := range s.g.Order {
		reachable[string(s.binary(id))] = true
	}
	for i := 0; i < len(s.g.Order); i += 500 {
		b, txt := s.binary(s.g.Order[i]), s.text(s.g.Order[i])
		f.Add(b)
		f.Add([]byte(txt))
		f.Add(b[:len(b)-1])
		f.Add([]byte(txt[:len(txt)/2]))
	}
	base := fresh()
	if err := base.UnmarshalBinary(s.binary(s.g.Order[len(s.g.Order)/2])); err != nil {
		f.Fatal(err)
	}
	before, _ := marshal(f, base)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, text := range []bool{false, true} {
			m := fresh()
			if err := m.UnmarshalBinary(before); err != nil {
				t.Fatal(err)
			}
			var err error
			if text {
				err = m.UnmarshalText(data)
			} else {
				err = m.UnmarshalBinary(data)
			}
			b, txt := marshal(t, m)
			if err != nil {
				var se *sm.SnapshotError
				if !errors.As(err, &se) || se.Machine != "channel" || se.Reason == "" {
					t.Fatalf("refusal %#v is not a *SnapshotError of the channel", err)
				}
				if !bytes.Equal(b, before) {
					t.Fatalf("refused %q, but the machine changed", data)
				}
				continue
			}
			if !reachable[string(b)] {
				t.Fatalf("restored unreachable %s from %q", txt, data)
			}
			if !text && !bytes.Equal(b, data) {
				t.Fatalf("restored from %x, saves %x", data, b)
			}
			other := fresh()
			if err := other.UnmarshalText([]byte(txt)); err != nil {
				t.Fatalf("%s does not restore: %v", txt, err)
			}
			if b2, _ := marshal(t, other); !bytes.Equal(b2, b) {
				t.Fatalf("%s restores as %x, not %x", txt, b2, b)
			}
		}
	})
}
