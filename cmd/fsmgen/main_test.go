package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestGeneratedUpToDate regenerates every directory with fsmgen //go:generate
// directives (the machines, the errno classifiers, the property tests) from spec/
// in a copy of the tree, and fails on any difference: generated code is
// regenerated, never patched.
func TestGeneratedUpToDate(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	directive := regexp.MustCompile(`(?m)^//go:generate go (?:run \.\./cmd/fsmgen|tool fsmgen) (.*)$`)
	checked := 0
	for _, dir := range []string{"statemachine", "sockets", "verify", "bench/lifecycle"} {
		sources, _ := filepath.Glob(filepath.Join(root, dir, "*.go"))
		var commands [][]string
		for _, src := range sources {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range directive.FindAllSubmatch(b, -1) {
				commands = append(commands, strings.Fields(string(m[1])))
			}
		}
		if len(commands) == 0 {
			continue
		}
		tmp := t.TempDir()
		copyDir(t, filepath.Join(root, "spec"), filepath.Join(tmp, "spec"))
		copyDir(t, filepath.Join(root, "docs"), filepath.Join(tmp, "docs"))
		copyDir(t, filepath.Join(root, dir), filepath.Join(tmp, dir))
		t.Chdir(filepath.Join(tmp, dir))
		for _, args := range commands {
			var stderr bytes.Buffer
			if code := run(args, &bytes.Buffer{}, &stderr); code != 0 {
				t.Fatalf("%s: fsmgen %s: exit %d\n%s", dir, strings.Join(args, " "), code, stderr.String())
			}
			checked++
		}
		generated := func(base string) []string {
			a, _ := filepath.Glob(filepath.Join(base, "*_gen.go"))
			b, _ := filepath.Glob(filepath.Join(base, "*_gen_test.go"))
			return append(a, b...)
		}
		docs, _ := filepath.Glob(filepath.Join(tmp, "docs", "*.md"))
		for _, d := range docs {
			got, _ := os.ReadFile(filepath.Join(root, "docs", filepath.Base(d)))
			exp, _ := os.ReadFile(d)
			if !bytes.Equal(got, exp) {
				t.Errorf("docs/%s has stale generated diagrams: run make generate", filepath.Base(d))
			}
		}
		want, have := generated(filepath.Join(tmp, dir)), generated(filepath.Join(root, dir))
		if len(want) != len(have) {
			t.Errorf("%s/ has %d generated files, regeneration gives %d: run make generate", dir, len(have), len(want))
		}
		for _, w := range want {
			got, err := os.ReadFile(filepath.Join(root, dir, filepath.Base(w)))
			if err != nil {
				t.Errorf("%s/%s: %v (run make generate)", dir, filepath.Base(w), err)
				continue
			}
			exp, _ := os.ReadFile(w)
			if !bytes.Equal(got, exp) {
				t.Errorf("%s/%s is stale or edited by hand: run make generate", dir, filepath.Base(w))
			}
		}
	}
	if checked < 2 {
		t.Fatalf("found %d fsmgen directives; expected at least the machines' and the property tests'", checked)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExitCodes(t *testing.T) {
	spec := filepath.Join("..", "..", "gen", "testdata", "conn.yaml")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("machine:\n  name: x\n  bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{nil, 2, "", "no command given"},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"check"}, 2, "", "no spec files given"},
		{[]string{"check", "-nope", spec}, 2, "", "flag provided but not defined"},
		{[]string{"graph", "-format", "svg", spec}, 2, "", "-format must be dot or mermaid"},
		{[]string{"check", spec}, 0, "ok: total, deterministic", ""},
		{[]string{"check", bad}, 1, "", `bad.yaml:3:3: machine: unknown key "bogus"`},
		{[]string{"check", "does-not-exist.yaml"}, 1, "", "no such file"},
		{[]string{"graph", "-format", "mermaid", spec}, 0, "stateDiagram-v2", ""},
		{[]string{"graph", spec}, 0, "digraph conn", ""},
		{[]string{"graph", "-machine", "nope", spec}, 1, "", `no machine "nope"`},
		{[]string{"check", "-h"}, 0, "", "usage: fsmgen check"},
		// Flags after the files, and "--" ending the flags.
		{[]string{"graph", spec, "-format", "mermaid"}, 0, "stateDiagram-v2", ""},
		{[]string{"graph", spec, "-format", "svg"}, 2, "", "-format must be dot or mermaid"},
		{[]string{"check", spec, "-nope"}, 2, "", "flag provided but not defined: -nope"},
		{[]string{"check", spec, "-h"}, 0, "", "usage: fsmgen check"},
		{[]string{"check", "--", spec, "-nope"}, 1, "", "open -nope: no such file"},
		{[]string{"graph", "-o", "--", spec, "-format", "nope"}, 2, "", "-format must be dot or mermaid"},
		// -count needs a product.
		{[]string{"check", spec, "-count", "x=2"}, 2, "", "check: -count is given but the files declare no product"},
		{[]string{"check", "-count", "x=2", spec}, 2, "", "check: -count is given but the files declare no product"},
		{[]string{"check", spec, "-count", "x=9"}, 2, "", "want component=N with N from 1 to 8"},
		{[]string{"version"}, 0, "fsmgen ", ""},
		{[]string{"version", spec}, 2, "", "version: takes no arguments"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		code := run(c.args, &out, &errOut)
		if code != c.code || !strings.Contains(out.String(), c.inStdout) || !strings.Contains(errOut.String(), c.inStderr) {
			t.Errorf("fsmgen %v: exit %d, stdout %q, stderr %q; want exit %d, stdout containing %q, stderr containing %q",
				c.args, code, out.String(), errOut.String(), c.code, c.inStdout, c.inStderr)
		}
	}
}

func TestGenerateRemovesStaleFiles(t *testing.T) {
	spec, err := filepath.Abs(filepath.Join("..", "..", "gen", "testdata", "conn.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "machines")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "old_gen.go")
	mine := filepath.Join(dir, "mine_gen.go")
	os.WriteFile(stale, []byte("// Code generated by \"fsmgen generate old.yaml\"; DO NOT EDIT.\npackage x\n"), 0o644)
	os.WriteFile(mine, []byte("// a hand-written file that happens to end in _gen.go\npackage x\n"), 0o644)
	var errOut bytes.Buffer
	if code := run([]string{"generate", "-o", dir, spec}, &bytes.Buffer{}, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale generated file kept: %v", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("hand-written file removed: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "conn_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	// The default package is the one the directory's own files declare, not
	// the base name of the directory nor the package of a stale generated file.
	if !bytes.Contains(b, []byte("\npackage x\n")) {
		t.Errorf("default package name: want package x (from mine_gen.go) in output:\n%.200s", b)
	}
}

func TestDefaultPackageName(t *testing.T) {
	spec, err := filepath.Abs(filepath.Join("..", "..", "gen", "testdata", "conn.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "machines")
	var errOut bytes.Buffer
	if code := run([]string{"generate", "-o", dir, spec}, &bytes.Buffer{}, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "conn_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("\npackage machines\n")) {
		t.Errorf("a directory without Go files: want its base name, package machines, in output:\n%.200s", b)
	}
	// The property tests of that directory are its external test package and
	// import it under the name its files declare; without a go.mod above the
	// directory its import path cannot be told.
	errOut.Reset()
	if code := run([]string{"proptest", "-o", dir, spec}, &bytes.Buffer{}, &errOut); code != 2 || !strings.Contains(errOut.String(), "give the machines' package with -import") {
		t.Errorf("proptest without go.mod or -import: exit %d, stderr %q; want 2 and a request for -import", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"proptest", "-o", dir, "-import", "example.com/m/machines", "-importname", "conns", spec}, &bytes.Buffer{}, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	b, err = os.ReadFile(filepath.Join(dir, "conn_prop_gen_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\npackage machines_test\n", "conns \"example.com/m/machines\"", "m conns.Conn"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("conn_prop_gen_test.go lacks %q:\n%s", want, b)
		}
	}
}

// TestGenerateChecks: generate model-checks the tables before writing; a table
// whose invariant fails (the breaker trips without clearing its failure count)
// makes it exit 1 with check's diagnostic and write nothing, and -nocheck
// writes it anyway, saying so. A product is checked too: verify's toy loop and
// channel pass alone, and fail as a product without the sync that tells the
// channels of the loop's failure.
func TestGenerateChecks(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "breaker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const clear = "to: open, do: [trip], set: {failures: 0}}"
	if !bytes.Contains(good, []byte(clear)) {
		t.Fatalf("testdata/breaker.yaml no longer has the row %q this test breaks", clear)
	}
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.yaml")
	if err := os.WriteFile(bad, bytes.Replace(good, []byte(clear), []byte("to: open, do: [trip]}"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"check", bad}, &out, &errOut); code != 1 {
		t.Fatalf("check of the broken table: exit %d, want 1\n%s%s", code, out.String(), errOut.String())
	}
	dir := filepath.Join(tmp, "breaker")
	errOut.Reset()
	code := run([]string{"generate", "-o", dir, bad}, &bytes.Buffer{}, &errOut)
	for _, want := range []string{
		"check breaker: FAILED",
		`VIOLATED invariants: invariant "countsOnlyWhenClosed" (` + bad + `:`,
		`) does not hold in open {failures=2}`,
		"trace: start -> called(timedOut) -> called(timedOut) -> called(timedOut)",
		"fsmgen generate: breaker violates 1 property; nothing written",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("generate of a table failing check: stderr lacks %q:\n%s", want, errOut.String())
		}
	}
	if code != 1 {
		t.Errorf("generate of a table failing check: exit %d, want 1", code)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("generate wrote into %s although the check failed (stat: %v)", dir, err)
	}
	errOut.Reset()
	if code := run([]string{"generate", "-nocheck", "-o", dir, bad}, &bytes.Buffer{}, &errOut); code != 0 {
		t.Fatalf("generate -nocheck: exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "-nocheck: the tables are validated but not model-checked") {
		t.Errorf("generate -nocheck does not say it skipped the check: stderr %q", errOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "breaker_gen.go")); err != nil {
		t.Errorf("generate -nocheck wrote no machine: %v", err)
	}
	errOut.Reset()
	if code := run([]string{"generate", "-o", dir, filepath.Join("testdata", "breaker.yaml")}, &bytes.Buffer{}, &errOut); code != 0 || errOut.Len() != 0 {
		t.Errorf("generate of a table passing check: exit %d, stderr %q; want 0 and nothing", code, errOut.String())
	}
	toy := filepath.Join("..", "..", "verify", "testdata")
	product, err := os.ReadFile(filepath.Join(toy, "toyproduct.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const failSync = "    - {from: loop, action: failChannels, to: channel, event: loopFailed}\n"
	if !bytes.Contains(product, []byte(failSync)) {
		t.Fatalf("verify/testdata/toyproduct.yaml no longer has the sync %q this test removes", failSync)
	}
	brokenProduct := filepath.Join(tmp, "toyproduct.yaml")
	if err := os.WriteFile(brokenProduct, bytes.Replace(product, []byte(failSync), nil, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	toyDir := filepath.Join(tmp, "toy")
	errOut.Reset()
	code = run([]string{"generate", "-o", toyDir, filepath.Join(toy, "toyloop.yaml"), filepath.Join(toy, "toychannel.yaml"), brokenProduct}, &bytes.Buffer{}, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "check toy (loop x1, channel x3): FAILED") || !strings.Contains(errOut.String(), "VIOLATED outlives") || strings.Contains(errOut.String(), "check loop") {
		t.Errorf("generate with a product failing check: exit %d, stderr %q; want 1, the product's violation and not the passing machines", code, errOut.String())
	}
	if _, err := os.Stat(toyDir); !os.IsNotExist(err) {
		t.Errorf("generate wrote into %s although the product's check failed (stat: %v)", toyDir, err)
	}
}

// TestHelp: fsmgen -h names every command with its purpose, and each command's
// -h starts with its synopsis and purpose.
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-h"}, &out, &bytes.Buffer{}); code != 0 {
		t.Fatalf("fsmgen -h: exit %d", code)
	}
	for _, c := range commands {
		if !regexp.MustCompile(`(?m)^  ` + c.name + ` +` + regexp.QuoteMeta(c.purpose) + `$`).MatchString(out.String()) {
			t.Errorf("fsmgen -h has no line for %s with its purpose %q:\n%s", c.name, c.purpose, out.String())
		}
		if c.purpose == "" || strings.Contains(c.purpose, "\n") {
			t.Errorf("%s: the purpose %q is not one line", c.name, c.purpose)
		}
		var errOut bytes.Buffer
		if code := run([]string{c.name, "-h"}, &bytes.Buffer{}, &errOut); code != 0 {
			t.Errorf("fsmgen %s -h: exit %d", c.name, code)
		}
		want := "usage: fsmgen " + c.synopsis + "\n\n" + strings.ToUpper(c.purpose[:1]) + c.purpose[1:] + ".\n"
		if !strings.HasPrefix(errOut.String(), want) {
			t.Errorf("fsmgen %s -h: got\n%s\nwant it to start with\n%s", c.name, errOut.String(), want)
		}
	}
	var errOut bytes.Buffer
	if code := run(nil, &bytes.Buffer{}, &errOut); code != 2 || !strings.Contains(errOut.String(), "  generate  "+commands[0].purpose) {
		t.Errorf("fsmgen without a command: exit %d, stderr %q; want 2 and the list of commands", code, errOut.String())
	}
}

// TestFlagsAnywhere runs the check of verify's toy product with -count after
// the spec files, where it used to be read as a file name, in the middle, and
// before them: each checks one channel, not the spec's three.
func TestFlagsAnywhere(t *testing.T) {
	var files []string
	for _, f := range []string{"toyloop", "toychannel", "toyproduct"} {
		files = append(files, filepath.Join("..", "..", "verify", "testdata", f+".yaml"))
	}
	for _, args := range [][]string{
		append(append([]string{"check"}, files...), "-count", "channel=1"),
		append([]string{"check", files[0], "-count=channel=1"}, files[1:]...),
		append([]string{"check", "-count", "channel=1"}, files...),
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("fsmgen %v: exit %d\n%s", args, code, errOut.String())
		}
		if !strings.Contains(out.String(), "check toy (loop x1, channel x1): ok") {
			t.Errorf("fsmgen %v: the product was not checked with one channel:\n%s", args, out.String())
		}
	}
}

func TestVersionLine(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	const pkg = "github.com/fsmkernel/fsmkernel/cmd/fsmgen"
	cases := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build information", nil, "fsmgen (no build information) " + runtime.Version()},
		{"go install @v1.2.0", &debug.BuildInfo{GoVersion: "go1.26.8", Path: pkg, Main: debug.Module{Path: "github.com/fsmkernel/fsmkernel", Version: "v1.2.0"}},
			"fsmgen v1.2.0 go1.26.8"},
		{"go build in a clone", &debug.BuildInfo{GoVersion: "go1.26.8", Path: pkg, Main: debug.Module{Path: "github.com/fsmkernel/fsmkernel", Version: "(devel)"},
			Settings: settings("vcs", "git", "vcs.revision", "0e68041cd13d", "vcs.time", "2026-12-01T13:25:08Z", "vcs.modified", "true")},
			"fsmgen (devel) git 0e68041cd13d (modified) 2026-12-01T13:25:08Z go1.26.8"},
		{"go tool in a user's module", &debug.BuildInfo{GoVersion: "go1.26.8", Path: pkg, Main: debug.Module{Path: "example.com/cb", Version: "(devel)"},
			Settings: settings("vcs", "git", "vcs.revision", "ffff"),
			Deps: []*debug.Module{
				{Path: "github.com/dave/jennifer", Version: "v1.7.1"},
				{Path: "github.com/fsmkernel/fsmkernel", Version: "v1.3.0"},
			}},
			"fsmgen v1.3.0 go1.26.8"},
		{"go tool, replaced", &debug.BuildInfo{GoVersion: "go1.26.8", Path: pkg, Main: debug.Module{Path: "example.com/cb", Version: "(devel)"},
			Deps: []*debug.Module{{Path: "github.com/fsmkernel/fsmkernel", Version: "v0.0.0", Replace: &debug.Module{Path: "../fsmkernel", Version: "(devel)"}}}},
			"fsmgen v0.0.0 => ../fsmkernel (devel) go1.26.8"},
	}
	for _, c := range cases {
		if got := versionLine(c.bi); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// TestCheckJSON: check -json prints the diagnostics of specs that do not load
// as JSON, one object per problem with its position; and for specs that
// load, the report and each search's result. A missing outcomes file is one
// diagnostic per event, not one more per row that names its outcomes.
func TestCheckJSON(t *testing.T) {
	var out, errb strings.Builder
	code := run([]string{"check", "-json", "../../spec/listener.yaml"}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errb.String())
	}
	var got struct {
		Diagnostics []struct {
			File    string
			Line    int
			Col     int
			Message string
		}
	}
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if len(got.Diagnostics) == 0 || len(got.Diagnostics) > 10 {
		t.Fatalf("%d diagnostics, want one per event carrying an unknown enumeration:\n%s", len(got.Diagnostics), out.String())
	}
	for _, d := range got.Diagnostics {
		if d.File == "" || d.Line == 0 || d.Col == 0 || !strings.Contains(d.Message, "no file of this command line declares it") {
			t.Errorf("diagnostic %+v", d)
		}
	}
	out.Reset()
	if code := run([]string{"check", "-json", "../../spec/outcomes.yaml", "../../spec/listener.yaml"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	var ok struct {
		Report  string
		Results []struct {
			Name       string
			Proven     []string
			Violations []any
		}
	}
	if err := json.Unmarshal([]byte(out.String()), &ok); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if !strings.Contains(ok.Report, "listener") || len(ok.Results) != 1 || ok.Results[0].Name != "listener" || len(ok.Results[0].Proven) == 0 || len(ok.Results[0].Violations) != 0 {
		t.Errorf("report %.80q, results %+v", ok.Report, ok.Results)
	}
}

// TestOneMistakeOneViolation: an action performed twice in one row is one
// VIOLATED block naming that row's file:line:col, not also the deadlock and
// termination findings the cut search would produce.
func TestOneMistakeOneViolation(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "breaker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), "do: [stopTimer], set: {failures: 0}}", "do: [stopTimer, stopTimer], set: {failures: 0}}", 1)
	if bad == string(src) {
		t.Fatal("the mutation did not apply")
	}
	path := filepath.Join(t.TempDir(), "breaker.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(bad, "\n") {
		if strings.Contains(l, "stopTimer, stopTimer") {
			line = i + 1
		}
	}
	var out, errb strings.Builder
	if code := run([]string{"check", path}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if n := strings.Count(out.String(), "VIOLATED"); n != 1 {
		t.Errorf("%d VIOLATED blocks, want 1:\n%s", n, out.String())
	}
	if want := fmt.Sprintf("(row %s:%d:", path, line); !strings.Contains(out.String(), want) {
		t.Errorf("the violation does not name the row %q:\n%s", want, out.String())
	}
	if !strings.Contains(out.String(), "not checked, the search being cut short by the violations: no deadlock, terminal reachable") {
		t.Errorf("the report does not say what the cut search left unchecked:\n%s", out.String())
	}
}

// TestJSONOnEveryCommand: -json prints the diagnostics of specs that do not
// load as JSON on standard output, and nothing on standard error, for every
// command that reads specs.
func TestJSONOnEveryCommand(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("classifiers:\n  c:\n    description: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"generate", "-json", "-o", t.TempDir(), bad},
		{"check", bad, "-json"},
		{"graph", "-json", bad},
		{"classify", "-json", "-o", t.TempDir(), "-import", "example.com/m", bad},
		{"proptest", "-json", "-o", t.TempDir(), "-import", "example.com/m", bad},
	} {
		var out, errb strings.Builder
		if code := run(args, &out, &errb); code != 1 {
			t.Errorf("%v: exit %d, want 1 (%s)", args, code, errb.String())
			continue
		}
		var got struct {
			Diagnostics []struct{ File, Message string }
		}
		if err := json.Unmarshal([]byte(out.String()), &got); err != nil || len(got.Diagnostics) != 3 || got.Diagnostics[0].File != bad {
			t.Errorf("%v: stdout %q (%v)", args, out.String(), err)
		}
		if errb.Len() != 0 {
			t.Errorf("%v: stderr %q, want nothing", args, errb.String())
		}
	}
}
