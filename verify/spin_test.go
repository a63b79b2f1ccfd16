package verify_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/fsmkernel/fsmkernel/gen"
	"github.com/fsmkernel/fsmkernel/verify"
)

// The SPIN cross-check: the Promela models fsmgen emits are explored by an
// outside model checker, which must store exactly the configurations verify/
// finds (plus SPIN's state before the options are chosen) and find no assertion
// violation; on a broken table it must find one. make verify-spin installs spin.

type spinResult struct {
	stored, errors int
	output         string
}

func runSpin(t *testing.T, model []byte) spinResult {
	t.Helper()
	spin, err := exec.LookPath("spin")
	if err != nil {
		t.Skip("spin is not installed: run make verify-spin, which installs it from Debian's packages")
	}
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is needed to compile spin's verifier")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.pml"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil && name != "./pan" {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	run(spin, "-a", "model.pml")
	// Full state storage (no hash compaction): the count is exact.
	run(cc, "-O0", "-w", "-DSAFETY", "-DMEMLIM=4096", "-o", "pan", "pan.c")
	out := run("./pan", "-m1000000")
	// The state after the environment's choice is stored as an atomic one;
	// nominal states are the configurations between steps.
	stored := regexp.MustCompile(`(\d+) nominal states`).FindStringSubmatch(out)
	if stored == nil {
		stored = regexp.MustCompile(`(\d+) states, stored`).FindStringSubmatch(out)
	}
	errs := regexp.MustCompile(`errors: (\d+)`).FindStringSubmatch(out)
	if stored == nil || errs == nil {
		t.Fatalf("cannot read spin's output:\n%s", out)
	}
	n, _ := strconv.Atoi(stored[1])
	e, _ := strconv.Atoi(errs[1])
	return spinResult{stored: n, errors: e, output: out}
}

func TestSpinAgreesOnMachines(t *testing.T) {
	pkg := loadFiles(t, nil, kernelSpecs...)
	for _, m := range pkg.Machines {
		t.Run(m.Name, func(t *testing.T) {
			res, err := verify.CheckMachine(pkg, m, verify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			sp := runSpin(t, gen.EmitPromela(pkg, m))
			if sp.errors != 0 {
				t.Fatalf("spin found %d errors:\n%s", sp.errors, sp.output)
			}
			if sp.stored != res.Configs+1 {
				t.Fatalf("spin stored %d states, verify found %d configurations (+1 for spin's initial state)", sp.stored, res.Configs)
			}
			t.Logf("%s: spin %d states, verify %d configurations", m.Name, sp.stored, res.Configs)
		})
	}
}

func TestSpinAgreesOnKernelProduct(t *testing.T) {
	pkg := loadFiles(t, nil, kernelSpecs...)
	pr := pkg.Products[0]
	counts := map[string]int{"channel": 2}
	res, err := verify.CheckProduct(pkg, pr, verify.Options{Counts: counts, NoSymmetry: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatal(verify.Report([]*verify.Result{res}))
	}
	sp := runSpin(t, gen.EmitPromelaProduct(pkg, pr, counts))
	if sp.errors != 0 {
		t.Fatalf("spin found %d errors:\n%s", sp.errors, sp.output)
	}
	if sp.stored != res.Configs+1 {
		t.Fatalf("spin stored %d states, verify found %d configurations (+1 for spin's initial state)", sp.stored, res.Configs)
	}
	t.Logf("kernel product, 2 channels, no symmetry reduction: spin %d states, verify %d configurations", sp.stored, res.Configs)
}

func TestSpinFindsMutation(t *testing.T) {
	found := 0
	for _, mu := range kernelMutations {
		// An order property on an action after an action, and one after a read.
		if mu.name != "readComplete on an empty cycle" && mu.name != "EBADF closes the descriptor a second time" {
			continue
		}
		found++
		t.Run(mu.name, func(t *testing.T) {
			pkg, m := mutate(t, mu)
			sp := runSpin(t, gen.EmitPromela(pkg, m))
			if sp.errors == 0 {
				t.Fatalf("spin found no violation in the mutated table:\n%s", sp.output)
			}
		})
	}
	if found != 2 {
		t.Fatalf("found %d of the 2 mutations", found)
	}
	// An obligation: SPIN's model carries the same bits.
	for _, mu := range obligationMutations {
		if mu.name != "a mid-cycle drain drops readComplete" && mu.name != "a wait that finds the poller invalid while failing is dropped" {
			continue
		}
		t.Run(mu.name, func(t *testing.T) {
			pkg, m := mutate(t, mu)
			sp := runSpin(t, gen.EmitPromela(pkg, m))
			if sp.errors == 0 || !regexp.MustCompile(`assertion violated \W*mo_`).MatchString(sp.output) {
				t.Fatalf("spin found no obligation violated in the mutated table:\n%s", sp.output)
			}
		})
	}
}
