package loop

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unsafe"

	"github.com/fsmkernel/fsmkernel/gen"
	sm "github.com/fsmkernel/fsmkernel/statemachine"
)

// loadSpec loads the kernel's tables, which the generated machines come from.
func loadSpec(t *testing.T) *gen.Package {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join("..", "spec", "*.yaml"))
	var srcs []gen.Source
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, gen.Source{Path: p, Data: b})
	}
	pkg, err := gen.Load(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

// TestRecordingNamesTheTables: what a recording writes for each machine is
// what the tables in spec/ name: the states, events and actions in order (so
// the fingerprint is the tables'), the initial state, the outcome each event
// carries, and the options, in order, with each of their values. The outcome
// and option names are written by hand in record.go: this is their check.
func TestRecordingNamesTheTables(t *testing.T) {
	pkg := loadSpec(t)
	for kind, d := range machineDescs() {
		var m *gen.Machine
		for _, x := range pkg.Machines {
			if x.Name == d.name {
				m = x
			}
		}
		if m == nil {
			t.Fatalf("spec/ has no machine %s", d.name)
		}
		if d.states != len(m.States) || d.events != len(m.Events) || d.actions != len(m.Actions) {
			t.Errorf("%s: %d states, %d events, %d actions; the tables have %d, %d, %d", d.name, d.states, d.events, d.actions, len(m.States), len(m.Events), len(m.Actions))
			continue
		}
		var states, events, actions []string
		for i, s := range m.States {
			if got := d.state(uint8(i)); got != s.Name {
				t.Errorf("%s: state %d is %q, the tables' %q", d.name, i, got, s.Name)
			}
			states = append(states, s.Name)
		}
		for e, ev := range m.Events {
			if got := d.event(uint8(e)); got != ev.Name {
				t.Errorf("%s: event %d is %q, the tables' %q", d.name, e, got, ev.Name)
			}
			events = append(events, ev.Name)
			if ev.Outcome < 0 {
				if got := d.outcome(uint8(e), 0); got != "" {
					t.Errorf("%s: event %s carries no outcome, the recording writes %q", d.name, ev.Name, got)
				}
				continue
			}
			for o, v := range pkg.Outcomes[ev.Outcome].Values {
				if got := d.outcome(uint8(e), uint8(o)); got != v.Name {
					t.Errorf("%s: event %s, outcome %d is written %q, the tables' %q", d.name, ev.Name, o, got, v.Name)
				}
			}
		}
		for _, a := range m.Actions {
			actions = append(actions, a.Name)
		}
		if fp := fingerprint(states, events, actions); fp != d.fingerprint {
			t.Errorf("%s: fingerprint %s, the tables' %s", d.name, d.fingerprint, fp)
		}
		if int(d.initial) != m.Initial {
			t.Errorf("%s: initial state %d, the tables' %d", d.name, d.initial, m.Initial)
		}
		checkOptions(t, machineKind(kind), d, m)
	}
}

// checkOptions sets each option of m to each of its values on a generated
// machine, packs the machine's variables as a record does and checks what the
// new line says: every option of the tables, in order, with that value.
func checkOptions(t *testing.T, kind machineKind, d machineDesc, m *gen.Machine) {
	t.Helper()
	var opts []gen.Var
	for _, v := range m.Vars {
		if v.Option {
			opts = append(opts, v)
		}
	}
	for i, v := range opts {
		for x := v.Min; x <= v.Max; x++ {
			var packed uint64
			switch kind {
			case kindEventloop:
				o := sm.DefaultEventloopOptions()
				setOption(t, &o, v.Name, x)
			case kindChannel:
				o := sm.DefaultChannelOptions()
				setOption(t, &o, v.Name, x)
				mc, err := sm.NewChannel(o)
				if err != nil {
					t.Fatal(err)
				}
				packed = channelOptions(mc.Vars())
			case kindListener:
				o := sm.DefaultListenerOptions()
				setOption(t, &o, v.Name, x)
				ml, err := sm.NewListener(o)
				if err != nil {
					t.Fatal(err)
				}
				packed = listenerOptions(ml.Vars())
			}
			fields := strings.Fields(string(d.options(packed, nil)))
			if len(fields) != len(opts) {
				t.Fatalf("%s: the new line gives %d options (%v), the tables have %d", d.name, len(fields), fields, len(opts))
			}
			want := v.Name + "=" + valueName(&v, x)
			if fields[i] != want {
				t.Errorf("%s: option %d set to %s is written %q", d.name, i, want, fields[i])
			}
		}
	}
}

// setOption sets the field of a generated Options struct that the option name
// is (autoRead: AutoRead) to the value x of its domain.
func setOption(t *testing.T, o any, name string, x int) {
	t.Helper()
	f := reflect.ValueOf(o).Elem().FieldByName(string(unicode.ToUpper(rune(name[0]))) + name[1:])
	if !f.IsValid() {
		t.Fatalf("%T has no field for option %s", o, name)
	}
	switch f.Kind() {
	case reflect.Bool:
		f.SetBool(x != 0)
	default:
		f.SetUint(uint64(x))
	}
}

func valueName(v *gen.Var, x int) string {
	switch v.Kind {
	case gen.KindBool:
		return strconv.FormatBool(x != 0)
	case gen.KindEnum:
		return v.Values[x].Name
	}
	return strconv.Itoa(x)
}

// TestRecordingInitialStates: the records take the generated machines'
// initial states as the steps that begin an instance (and carry its options).
func TestRecordingInitialStates(t *testing.T) {
	e, _ := sm.NewEventloop(sm.DefaultEventloopOptions())
	c, _ := sm.NewChannel(sm.DefaultChannelOptions())
	l, _ := sm.NewListener(sm.DefaultListenerOptions())
	if e.State() != sm.EventloopStateCreated || c.State() != sm.ChannelStateFresh || l.State() != sm.ListenerStateFresh {
		t.Fatalf("initial states %v, %v, %v; record.go takes created, fresh, fresh", e.State(), c.State(), l.State())
	}
}

// TestRecordSize: a record is 64 bytes, as Options.Record says: one cache
// line, and the index's multiplication a shift.
func TestRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(record{}); n != 64 {
		t.Errorf("a record is %d bytes, want 64", n)
	}
}
