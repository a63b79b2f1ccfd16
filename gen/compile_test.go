package gen_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmkernel/fsmkernel/gen"
)

// emitConn generates the Go of testdata/conn.yaml as package example.
func emitConn(t *testing.T, command string) map[string][]byte {
	t.Helper()
	src, err := os.ReadFile("testdata/conn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return emitSpec(t, command, src)
}

// emitSpec generates the Go of the spec src, named conn.yaml, as package example.
func emitSpec(t *testing.T, command string, src []byte) map[string][]byte {
	t.Helper()
	pkg, err := gen.Load(gen.Source{Path: "conn.yaml", Data: src})
	if err != nil {
		t.Fatal(err)
	}
	files, err := gen.EmitGo(pkg, gen.GoOptions{Package: "example", Command: command})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// goInModule writes files and a go.mod into a fresh module and runs the go
// command there; it returns the command's output and error.
func goInModule(t *testing.T, files map[string][]byte, args ...string) ([]byte, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs the go command")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to compile generated code: %v", err)
	}
	dir := t.TempDir()
	files["go.mod"] = []byte("module example\n\ngo 1.26\n")
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	return cmd.CombinedOutput()
}

// addRunFile copies testdata/run/<name>.txt into files as name.
func addRunFile(t *testing.T, files map[string][]byte, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "run", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	files[name] = b
}

// TestGeneratedCodeRuns generates Go from testdata/conn.yaml into a fresh module,
// adds testdata/run/conn_test.go.txt, testdata/run/snapshot_test.go.txt and the
// performer testdata/run/recorder.go.txt, and runs vet and the tests there: the
// generated code compiles, behaves as the table says, performs actions in order,
// saves and restores its configurations, and does not allocate.
func TestGeneratedCodeRuns(t *testing.T) {
	files := emitConn(t, "fsmgen generate -pkg example conn.yaml")
	addRunFile(t, files, "conn_test.go")
	addRunFile(t, files, "snapshot_test.go")
	addRunFile(t, files, "recorder.go")
	if out, err := goInModule(t, files, "vet", "."); err != nil {
		t.Fatalf("go vet in the generated module: %v\n%s", err, out)
	}
	if out, err := goInModule(t, files, "test", "-count=1", "."); err != nil {
		t.Fatalf("go test in the generated module: %v\n%s", err, out)
	}
}

// TestGuardBreaksBuildOnDrift edits a generated constant the way a hand edit or a
// stale file would, and checks that the stringer-style guard stops the build.
func TestGuardBreaksBuildOnDrift(t *testing.T) {
	files := emitConn(t, "fsmgen")
	code := string(files["conn_gen.go"])
	drifted := strings.Replace(code, "ConnStateConnecting ConnState = iota", "ConnStateConnecting ConnState = iota + 1", 1)
	if drifted == code {
		t.Fatal("generated code does not declare ConnStateConnecting as expected")
	}
	files["conn_gen.go"] = []byte(drifted)
	out, err := goInModule(t, files, "build", ".")
	if err == nil {
		t.Fatal("build succeeded with drifted constants; the guard did not fire")
	}
	if !strings.Contains(string(out), "out of bounds") && !strings.Contains(string(out), "invalid argument") {
		t.Fatalf("build failed for another reason:\n%s", out)
	}
}

// TestUnperformedActionBreaksBuild adds an action to testdata/conn.yaml, as an
// edit of the table would, and builds the unchanged performer
// testdata/run/recorder.go.txt against the regenerated code: the build must fail,
// naming the method the performer lacks. An action added to a table without being
// implemented in the runtime is a compile error, not a silent no-op.
func TestUnperformedActionBreaksBuild(t *testing.T) {
	src, err := os.ReadFile("testdata/conn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec := string(src)
	for _, edit := range [][2]string{
		{"    closeFD: {description: close(2) the descriptor., max: 1}\n", "    closeFD: {description: close(2) the descriptor., max: 1}\n    flushOutput: {description: Write what is buffered.}\n"},
		{"do: [readComplete]", "do: [readComplete, flushOutput]"},
	} {
		edited := strings.Replace(spec, edit[0], edit[1], 1)
		if edited == spec {
			t.Fatalf("testdata/conn.yaml has no %q to edit", edit[0])
		}
		spec = edited
	}
	files := emitSpec(t, "fsmgen", []byte(spec))
	if !bytes.Contains(files["conn_gen.go"], []byte("\tFlushOutput()\n")) {
		t.Fatalf("ConnPerformer has no method FlushOutput:\n%s", files["conn_gen.go"])
	}
	addRunFile(t, files, "recorder.go")
	out, err := goInModule(t, files, "build", ".")
	if err == nil {
		t.Fatal("the performer still builds after the table gained action flushOutput")
	}
	if !strings.Contains(string(out), "does not implement ConnPerformer (missing method FlushOutput)") {
		t.Fatalf("build failed for another reason:\n%s", out)
	}
}

// TestNoActionsCompiles: a machine that declares no actions still gets a performer
// (an empty interface) and a PerformOn that compiles.
func TestNoActionsCompiles(t *testing.T) {
	files := emitSpec(t, "fsmgen", []byte(`machine:
  name: conn
  description: No actions.
  states:
    idle: {description: Idle., initial: true}
    done: {description: Done., terminal: true}
  events:
    stop: {description: Stop.}
  transitions:
    - {from: idle, on: stop, to: done}
    - {from: done, on: "*", ignore: true}
`))
	if out, err := goInModule(t, files, "vet", "."); err != nil {
		t.Fatalf("go vet in the generated module: %v\n%s", err, out)
	}
}

// TestEmitDeterministic: the same input gives byte-identical output.
func TestEmitDeterministic(t *testing.T) {
	src, err := os.ReadFile("testdata/conn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var first map[string][]byte
	for i := 0; i < 5; i++ {
		pkg, err := gen.Load(gen.Source{Path: "conn.yaml", Data: src})
		if err != nil {
			t.Fatal(err)
		}
		files, err := gen.EmitGo(pkg, gen.GoOptions{Package: "example", Command: "fsmgen"})
		if err != nil {
			t.Fatal(err)
		}
		files["dot"] = gen.EmitDOT(pkg, pkg.Machines[0])
		files["mmd"] = gen.EmitMermaid(pkg, pkg.Machines[0])
		if first == nil {
			first = files
			continue
		}
		for name, b := range files {
			if !bytes.Equal(b, first[name]) {
				t.Fatalf("run %d: %s differs from the first run", i, name)
			}
		}
	}
}
