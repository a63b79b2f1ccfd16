package statemachine_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoIO enforces the layering rule: the generated machines decide, they never
// perform. No package that statemachine depends on, directly or not, may do I/O.
func TestNoIO(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"os", "net", "time", "syscall", "golang.org/x/sys/"}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list -deps returned %q: expected the package and its dependencies", out)
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
				t.Errorf("statemachine depends on %s (forbidden: %s)", dep, f)
			}
		}
	}
}
