package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOwnModule uses fsmgen as a user would: in a fresh module that requires
// this one (replaced by the working tree) and declares fsmgen as a tool, with a
// circuit breaker of its own whose package, breaker, is in directory circuit,
// and whose //go:generate lines run go tool fsmgen. circuit/ holds the machine,
// its classifiers (so nothing is imported) and property tests in the external
// package breaker_test, all with every name and path inferred, and a test of
// the machine's snapshots (a round trip in both forms, a refusal); netx/ holds
// the classifiers and property tests again in another package, importing the
// machine by path with its name read from circuit/ (not its directory name),
// with the flags after the spec file. go generate and go test -v must succeed,
// and the generated property tests must have run in both packages. go tool
// fsmgen version names the version of this module that the user's requires,
// and its replacement.
func TestOwnModule(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and tests a module with the go command")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed: %v", err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := os.ReadFile(filepath.Join("testdata", "breaker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/cb\n\ngo 1.26\n\nrequire github.com/fsmkernel/fsmkernel v0.0.0\n\n" +
			"replace github.com/fsmkernel/fsmkernel => " + root + "\n\ntool github.com/fsmkernel/fsmkernel/cmd/fsmgen\n",
		"spec/breaker.yaml": string(spec),
		"circuit/doc.go":    ownModuleDoc,
		"circuit/breaker_test.go": `package breaker_test

import (
	"testing"

	breaker "example.com/cb/circuit"
	"golang.org/x/sys/unix"
)

func TestTripsAfterThreeFailures(t *testing.T) {
	b, err := breaker.NewBreaker(breaker.DefaultBreakerOptions())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := b.Called(breaker.ClassifyCall(unix.ETIMEDOUT)); err != nil {
			t.Fatal(err)
		}
	}
	if b.State() != breaker.BreakerStateOpen {
		t.Fatalf("state %v after three timeouts, want open", b.State())
	}
	if _, err := b.Called(breaker.ClassifyCall(nil)); err == nil {
		t.Fatal("a call while open was accepted")
	}
}
`,
		"circuit/snapshot_test.go": `package breaker_test

import (
	"encoding"
	"errors"
	"testing"

	breaker "example.com/cb/circuit"
	"golang.org/x/sys/unix"
)

var _ interface {
	encoding.BinaryAppender
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
	encoding.TextAppender
	encoding.TextMarshaler
	encoding.TextUnmarshaler
} = (*breaker.Breaker)(nil)

func TestSnapshotRoundTrip(t *testing.T) {
	b, _ := breaker.NewBreaker(breaker.DefaultBreakerOptions())
	if _, err := b.Called(breaker.ClassifyCall(unix.ETIMEDOUT)); err != nil {
		t.Fatal(err)
	}
	bin, err := b.MarshalBinary()
	if err != nil || len(bin) != 11 {
		t.Fatalf("MarshalBinary: %x, %v; want 9 bytes of header, the state and failures", bin, err)
	}
	txt, err := b.MarshalText()
	if want := "breaker v1 state=closed failures=1"; err != nil || string(txt) != want {
		t.Fatalf("MarshalText: %q, %v; want %q", txt, err, want)
	}
	var fromBinary, fromText breaker.Breaker
	if err := fromBinary.UnmarshalBinary(bin); err != nil || fromBinary != b {
		t.Fatalf("UnmarshalBinary: %v, %+v, want %+v", err, fromBinary, b)
	}
	if err := fromText.UnmarshalText(txt); err != nil || fromText != b {
		t.Fatalf("UnmarshalText: %v, %+v, want %+v", err, fromText, b)
	}
	// The restored breaker goes on where the saved one was: two more failures trip it.
	for range 2 {
		fromBinary.Called(breaker.ClassifyCall(unix.ETIMEDOUT))
	}
	if fromBinary.State() != breaker.BreakerStateOpen {
		t.Fatalf("state %v after three timeouts across a restore, want open", fromBinary.State())
	}
	err = fromText.UnmarshalText([]byte("breaker v1 state=open failures=2"))
	var se *breaker.SnapshotError
	if want := "breaker: snapshot rejected: invariant countsOnlyWhenClosed violated: failures == 0 || state == closed"; !errors.As(err, &se) || err.Error() != want {
		t.Fatalf("UnmarshalText of a broken invariant: %v, want %q", err, want)
	}
	if fromText != b {
		t.Fatalf("a refused snapshot changed the breaker: %+v", fromText)
	}
}
`,
		"netx/doc.go": `// Package netx classifies call errors for the breaker of example.com/cb/circuit.
package netx

//go:generate go tool fsmgen classify ../spec/breaker.yaml -import example.com/cb/circuit
//go:generate go tool fsmgen proptest ../spec/breaker.yaml -pkg netx -import example.com/cb/circuit
`,
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goCmd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = dir
		// The module cache and proxy are the parent's; -mod=mod lets the go
		// command complete go.mod and go.sum from them.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// go tool does not complete go.mod itself, whatever GOFLAGS says.
	goCmd("mod", "tidy")
	goCmd("generate", "./...")
	for _, f := range []string{"circuit/breaker_gen.go", "circuit/classify_gen.go", "circuit/breaker_prop_gen_test.go", "netx/classify_gen.go", "netx/breaker_prop_gen_test.go"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("go generate did not write %s: %v", f, err)
		}
	}
	out := goCmd("test", "-count=1", "-v", "./...")
	// go test -v prints each package's tests, then its "ok  \tpath" line.
	ran := map[string]string{}
	block := ""
	for _, line := range strings.SplitAfter(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "ok" {
			ran[f[1]] = block
			block = ""
			continue
		}
		block += line
	}
	for pkg, tests := range map[string][]string{
		"example.com/cb/circuit": {"TestBreakerMatchesReference", "TestTripsAfterThreeFailures", "TestSnapshotRoundTrip"},
		"example.com/cb/netx":    {"TestBreakerMatchesReference"},
	} {
		for _, test := range tests {
			if !regexp.MustCompile(`(?m)^--- PASS: ` + test + ` `).MatchString(ran[pkg]) {
				t.Errorf("%s: go test -v does not show %s passing:\n%s", pkg, test, out)
			}
		}
	}
	if v := goCmd("tool", "fsmgen", "version"); !strings.HasPrefix(v, "fsmgen v0.0.0 => "+root+" (devel) go1.") {
		t.Errorf("go tool fsmgen version: %q, want the required version and its replacement", v)
	}
}

// ownModuleDoc is circuit/doc.go of TestOwnModule, and the README's worked
// example (TestReadmeShowsOwnModule keeps the two equal).
const ownModuleDoc = `// Package breaker is a circuit breaker generated from ../spec/breaker.yaml.
package breaker

//go:generate go tool fsmgen generate ../spec/breaker.yaml
//go:generate go tool fsmgen classify ../spec/breaker.yaml
//go:generate go tool fsmgen proptest ../spec/breaker.yaml
`

// TestReadmeShowsOwnModule: the README's worked example is the one
// TestOwnModule runs end to end in a fresh module: its package file, and the
// table it names.
func TestReadmeShowsOwnModule(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"```go\n" + ownModuleDoc + "```", "go get -tool github.com/fsmkernel/fsmkernel/cmd/fsmgen", "cmd/fsmgen/testdata/breaker.yaml"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md does not show:\n%s", want)
		}
	}
}
