package verify_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/fsmkernel/fsmkernel/verify"
)

// recorder is a rapid.TB that records failure instead of failing the test, so a
// test can assert that a property run fails.
type recorder struct {
	*testing.T
	mu     sync.Mutex
	failed bool
	msgs   []string
}

func (r *recorder) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, msg)
}
func (r *recorder) Errorf(f string, a ...any) { r.fail(fmt.Sprintf(f, a...)) }
func (r *recorder) Error(a ...any)            { r.fail(fmt.Sprint(a...)) }
func (r *recorder) Fatalf(f string, a ...any) { r.fail(fmt.Sprintf(f, a...)); r.FailNow() }
func (r *recorder) Fatal(a ...any)            { r.fail(fmt.Sprint(a...)); r.FailNow() }
func (r *recorder) Fail()                     { r.fail("Fail") }
func (r *recorder) FailNow()                  { r.fail("FailNow"); panic(stopRun{}) }
func (r *recorder) Failed() bool              { r.mu.Lock(); defer r.mu.Unlock(); return r.failed }

type stopRun struct{}

// runRecorded runs rapid.Check under a recorder and returns it.
func runRecorded(t *testing.T, prop func(*rapid.T)) *recorder {
	rec := &recorder{T: t}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(stopRun); !ok {
					panic(r)
				}
			}
		}()
		rapid.Check(rec, prop)
	}()
	return rec
}

// droppingSystem loses the last action of every transition that has one: the
// kind of bug the reference comparison exists to catch.
type droppingSystem struct{ verify.System }

func (d droppingSystem) Fire(e, o int) ([]int, bool, error) {
	acts, rej, err := d.System.Fire(e, o)
	if len(acts) > 0 {
		acts = acts[:len(acts)-1]
	}
	return acts, rej, err
}

// stuckSystem never leaves its initial state.
type stuckSystem struct{ verify.System }

func (s stuckSystem) Fire(e, o int) ([]int, bool, error) { return nil, false, nil }

func TestReferenceComparisonCatchesBugs(t *testing.T) {
	// These runs fail on purpose; keep rapid from saving them as regressions.
	if err := flag.Set("rapid.nofailfile", "true"); err != nil {
		t.Fatal(err)
	}
	pkg, err := verify.LoadSpecs(os.ReadFile, "testdata/toychannel.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := verify.Machine(pkg, "channel")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		wrap func(verify.System) verify.System
		want string
	}{
		{"dropped action", func(s verify.System) verify.System { return droppingSystem{s} }, "actions"},
		{"stuck state", func(s verify.System) verify.System { return stuckSystem{s} }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := runRecorded(t, func(rt *rapid.T) {
				verify.CheckAgainstReference(rt, pkg, m, func(options []int) (verify.System, error) {
					ref, err := verify.NewReference(pkg, m, options)
					return c.wrap(ref), err
				})
			})
			if !rec.Failed() {
				t.Fatal("the property run passed on a broken system")
			}
			if !strings.Contains(strings.Join(rec.msgs, "\n"), c.want) {
				t.Errorf("failure does not mention %q: %v", c.want, rec.msgs)
			}
		})
	}
}
