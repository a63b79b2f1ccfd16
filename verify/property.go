package verify

import (
	"fmt"
	"slices"

	"pgregory.net/rapid"

	"github.com/fsmkernel/fsmkernel/gen"
)

// System is a machine under test, seen through an adapter with integer events,
// outcomes, actions and variables numbered as in the IR. fsmgen proptest
// generates the adapter for each generated machine.
type System interface {
	// Fire delivers (event, outcome); rejected reports a *RejectedError; err any
	// other error.
	Fire(event, outcome int) (actions []int, rejected bool, err error)
	State() int
	Vars() []int
	CheckInvariants() error
}

// MaxSteps bounds the events of one random run.
const MaxSteps = 200

// CheckAgainstReference draws options and an event sequence, runs them on the
// system made by newSystem and on the looplab Reference of the same table, and
// fails at the first step where states, variables, actions or rejections differ
// or an invariant breaks. rapid shrinks a failure to a minimal sequence.
func CheckAgainstReference(t *rapid.T, pkg *gen.Package, m *gen.Machine, newSystem func(options []int) (System, error)) {
	options := make([]int, len(m.Vars))
	for i, v := range m.Vars {
		options[i] = v.Initial
		if v.Option {
			options[i] = rapid.IntRange(v.Min, v.Max).Draw(t, "option "+v.Name)
		}
	}
	sut, err := newSystem(options)
	if err != nil {
		t.Fatalf("new system: %v", err)
	}
	ref, err := NewReference(pkg, m, options)
	if err != nil {
		t.Fatalf("new reference: %v", err)
	}
	if err := compare(pkg, m, sut, ref); err != nil {
		t.Fatalf("initially: %v", err)
	}
	steps := rapid.IntRange(1, MaxSteps).Draw(t, "steps")
	for i := 0; i < steps; i++ {
		e := rapid.IntRange(0, len(m.Events)-1).Draw(t, "event")
		o := rapid.IntRange(0, m.NumOutcomes(pkg, e)-1).Draw(t, "outcome")
		step := pkg.FormatStep(m, e, o)
		got, gotRej, err := sut.Fire(e, o)
		if err != nil {
			t.Fatalf("step %d %s: %v", i, step, err)
		}
		want, wantRej, err := ref.Fire(e, o)
		if err != nil {
			t.Fatalf("step %d %s: reference: %v", i, step, err)
		}
		if gotRej != wantRej {
			t.Fatalf("step %d %s: rejected=%v, reference rejected=%v", i, step, gotRej, wantRej)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d %s: actions %s, reference %s", i, step, actionNames(m, got), actionNames(m, want))
		}
		if err := compare(pkg, m, sut, ref); err != nil {
			t.Fatalf("step %d %s: %v", i, step, err)
		}
		if err := sut.CheckInvariants(); err != nil {
			t.Fatalf("step %d %s: %v", i, step, err)
		}
		if err := ref.CheckInvariants(); err != nil {
			t.Fatalf("step %d %s: reference: %v", i, step, err)
		}
	}
}

func compare(pkg *gen.Package, m *gen.Machine, sut System, ref *Reference) error {
	if s, r := sut.State(), ref.State(); s != r {
		return fmt.Errorf("state %s, reference %s", stateName(m, s), stateName(m, r))
	}
	if v, r := sut.Vars(), ref.Vars(); !slices.Equal(v, r) {
		return fmt.Errorf("variables %v, reference %v", v, r)
	}
	return nil
}

func stateName(m *gen.Machine, s int) string {
	if s >= 0 && s < len(m.States) {
		return m.States[s].Name
	}
	return fmt.Sprintf("state(%d)", s)
}

func actionNames(m *gen.Machine, acts []int) []string {
	out := make([]string, len(acts))
	for i, a := range acts {
		if a >= 0 && a < len(m.Actions) {
			out[i] = m.Actions[a].Name
		} else {
			out[i] = fmt.Sprintf("action(%d)", a)
		}
	}
	return out
}

// LoadSpecs loads spec files for a test; it is what generated property tests call.
func LoadSpecs(read func(string) ([]byte, error), paths ...string) (*gen.Package, error) {
	var srcs []gen.Source
	for _, p := range paths {
		b, err := read(p)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, gen.Source{Path: p, Data: b})
	}
	return gen.Load(srcs...)
}

// Machine returns the machine of pkg named name.
func Machine(pkg *gen.Package, name string) (*gen.Machine, error) {
	for _, m := range pkg.Machines {
		if m.Name == name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("verify: no machine %q", name)
}
