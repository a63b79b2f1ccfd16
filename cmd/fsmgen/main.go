// Fsmgen compiles state tables written in YAML into allocation-free Go state
// machines, diagrams and a verification report.
//
// Usage:
//
//	fsmgen generate [-o dir] [-pkg name] [-nocheck] spec.yaml...
//	fsmgen check [-count component=N]... [-counterexamples dir] [-scripts dir] spec.yaml...
//	fsmgen graph [-format dot|mermaid] [-machine name] [-o file] spec.yaml...
//	fsmgen graph -splice doc.md spec.yaml...
//	fsmgen classify [-import path] [-importname name] [-o dir] [-pkg name] spec.yaml...
//	fsmgen proptest [-import path] [-importname name] [-verify path] [-o dir] [-pkg name] spec.yaml...
//	fsmgen replay [-json] recording.txt spec.yaml...
//	fsmgen version
//
// All spec files named on one command line form one package: outcome enumerations
// declared in any of them are shared by all the machines. The format is described
// in docs/spec-format.md. Flags may be given before or after the spec files
// (fsmgen check a.yaml -count x=2); after "--" every argument is a file.
//
// # Commands
//
// generate validates the tables, runs every check that check runs (the model
// check of every machine alone and of every product the files declare), and only
// when all of them pass writes fsm_gen.go (the shared outcome enumerations and
// error types) and one <machine>_gen.go per machine into dir (default "."), in Go
// package name (default: the package of the Go files already in dir, else the
// base name of dir). When a check fails it prints the failed searches with their
// violations, writes nothing and exits 1; -nocheck skips the model check and says
// so on standard error. Files named *_gen.go in dir that fsmgen wrote earlier and
// no longer produces are removed. The first line of every file records the
// command, so output is byte-identical across runs of the same command. It is
// meant for //go:generate, in a module that requires this one and declares it as
// a tool (go get -tool github.com/fsmkernel/fsmkernel/cmd/fsmgen):
//
//	//go:generate go tool fsmgen generate ../spec/conn.yaml
//
// check validates the tables and prints a report per machine: states, events,
// cells answered, reachable states and configurations, and whether a terminal
// state is reachable from every reachable configuration. It then model-checks
// every machine alone and every declared product (an event loop with its
// channels, -count channel=N instances) and prints, per search, the configurations
// explored, transitions, properties proven and the time taken; a violated
// property is printed with the shortest event trace that reaches it, and check
// exits 1. -count on files that declare no product is a usage error.
//
// With -counterexamples dir, check also writes the shortest trace of each
// violation into dir as a behaviour script, <machine>-<property>.txt or
// <product>-<property>.txt, that fails until the tables are fixed; it says on
// standard error what it wrote, or that there was nothing to write. With -scripts
// dir it runs every behaviour script dir/*.txt against the tables after the
// search, reports each failure with its file:line, and exits 1 if one fails.
// The scripts' format is verify.RunScript's; docs/spec-format.md shows the
// round trip under "Counterexamples as tests".
//
// graph prints one machine (-machine, required when the files hold several) as a
// Graphviz DOT digraph or a Mermaid state diagram, to standard output or -o file.
// With -splice doc.md it rewrites, in that Markdown file, every block between
// "<!-- fsmgen:mermaid NAME -->" and "<!-- fsmgen:end -->" with a Mermaid diagram
// of machine NAME, so documentation shows the tables as they are. Edges are
// labelled with their events; -labels full labels them with every row's guard
// and actions.
//
// classify writes the errno classifiers declared under "classifiers" as Go for the
// I/O side: classify_gen.go with one Classify<Name> function per classifier, and
// classify_linux_gen.go and classify_bsd_gen.go with the errnos of one system
// family each. They return the outcome types of the machines package (generated
// from the same specs) and use golang.org/x/sys/unix errnos.
//
// proptest writes, per machine, <machine>_prop_gen_test.go: an adapter from the
// generated machine to verify.System and a pgregory.net/rapid test that runs
// random event sequences through it and through github.com/looplab/fsm built from
// the same tables, requiring equal states, variables, actions and rejections at
// every step. The tests are in package -pkg (default: the package of dir with
// _test appended, an external test package) and read the spec files at run time,
// by their paths relative to -o. -verify is the import path of the verify package
// they call (default github.com/fsmkernel/fsmkernel/verify).
//
// For classify and proptest, -import is the import path of the machines package
// and -importname its Go package name. -import defaults to the package of the
// output directory itself, its import path told by the nearest go.mod above it:
// classifiers written next to the machines, property tests in the machines'
// directory. -importname defaults to the package clause of the Go files in the
// machines' directory when it is in the same module, else to the last element of
// the import path (without a /vN suffix). When the machines' package is the
// output package, nothing is imported.
//
// version prints the version of the module fsmgen was built from (a tag, or
// "(devel)" with the VCS revision when the build recorded it) and the Go version.
//
// # Diagnostics
//
// Every problem in the tables is printed as file:line:col: message, all of them in
// one run: unknown and duplicate names, cells with no answer, cells with two
// answers, unreachable states, states from which no terminal state is reachable,
// non-terminal states that do not answer an abnormal event, type errors in guards
// and updates. With -json, which every command that reads spec files takes, they
// are printed instead as one JSON object on standard output; check's object also
// holds its report and the result of every search.
//
// # The user's duties
//
//  1. Name every spec file of one generated package on each command line, the
//     same files for generate, classify and proptest: outcome enumerations and
//     classifiers declared in one are shared by all.
//  2. Run generate, classify and proptest from //go:generate (with fsmgen
//     declared as a tool of your module) and commit what they write. Never edit
//     a generated file: change the tables and generate again; generate removes
//     the files it no longer produces.
//  3. Treat exit status 1 as a failed build: when the tables are invalid or a
//     check fails, generate writes nothing, and the diagnostics or the violated
//     property's trace say why. Use -nocheck only while a table is unfinished:
//     it writes machines no search has checked.
//  4. Keep the property tests where proptest wrote them, or move the spec files
//     with them: they read the files at run time, by paths relative to -o.
//  5. Implement each generated machine's Performer interface in your runtime,
//     and drive the machines with the duties package statemachine's
//     documentation lists; they hold for every machine fsmgen generates.
//
// # Exit status
//
// 0 on success, 1 when the tables are invalid, a model check fails, or a file
// cannot be read or written, 2 on a usage error.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/fsmkernel/fsmkernel/gen"
	"github.com/fsmkernel/fsmkernel/verify"
)

// commands lists every command with its synopsis and purpose, in the order of
// the usage text.
var commands = []struct{ name, synopsis, purpose string }{
	{"generate", "generate [-o dir] [-pkg name] [-nocheck] spec.yaml...", "check the tables like check, then write their machines as Go"},
	{"check", "check [-count component=N]... [-counterexamples dir] [-scripts dir] spec.yaml...", "validate and model-check the tables and print a report"},
	{"graph", "graph [-format dot|mermaid] [-machine name] [-o file] spec.yaml...\n       fsmgen graph -splice doc.md spec.yaml...", "draw a machine as Graphviz DOT or Mermaid, or refresh the diagrams of a Markdown file"},
	{"classify", "classify [-import path] [-importname name] [-o dir] [-pkg name] spec.yaml...", "write the errno classifiers as Go for the I/O side"},
	{"proptest", "proptest [-import path] [-importname name] [-verify path] [-o dir] [-pkg name] spec.yaml...", "write property tests comparing the generated machines with looplab/fsm"},
	{"replay", "replay [-json] recording.txt spec.yaml...", "check that a recording of the runtime's transitions is a legal path of the tables"},
	{"version", "version", "print the version fsmgen was built from"},
}

func synopsis(name string) string {
	for _, c := range commands {
		if c.name == name {
			return c.synopsis
		}
	}
	panic("fsmgen: no command " + name)
}

func purpose(name string) string {
	for _, c := range commands {
		if c.name == name {
			return c.purpose
		}
	}
	panic("fsmgen: no command " + name)
}

var usage = func() string {
	var b strings.Builder
	b.WriteString("fsmgen compiles state tables written in YAML into Go state machines, diagrams\nand a model-checked report.\n\nusage: fsmgen <command> [flags] spec.yaml...\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.purpose)
	}
	b.WriteString("\nFlags may come before or after the spec files. Run \"fsmgen <command> -h\" for a\ncommand's flags, \"go doc github.com/fsmkernel/fsmkernel/cmd/fsmgen\" for the manual.\n")
	return b.String()
}()

// errUsage marks errors that exit with status 2.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	err := dispatch(args, stdout, stderr)
	var je jsonDiagnostics
	if errors.As(err, &je) {
		if werr := writeJSON(stdout, checkJSON{Diagnostics: diagnosticsJSON(je.ds)}); werr != nil {
			fmt.Fprintln(stderr, werr)
		}
		return 1
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err == errUsage:
		return 2 // the flag package has printed the problem and the command's usage
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "fsmgen"+strings.TrimPrefix(err.Error(), errUsage.Error()))
		fmt.Fprint(stderr, usage)
		return 2
	}
	fmt.Fprintln(stderr, err)
	return 1
}

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "generate":
		return generate(args, rest, stderr)
	case "check":
		return check(rest, stdout, stderr)
	case "graph":
		return graph(rest, stdout, stderr)
	case "classify":
		return classify(args, rest, stderr)
	case "proptest":
		return proptest(args, rest, stderr)
	case "replay":
		return replay(rest, stdout, stderr)
	case "version":
		return version(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageErr("unknown command %q", cmd)
}

// jsonDiagnostics are diagnostics a command given -json returns: run prints
// them as JSON on standard output instead of as text on standard error.
type jsonDiagnostics struct{ ds gen.Diagnostics }

func (j jsonDiagnostics) Error() string { return j.ds.Error() }

// asJSON reports whether the command's -json flag, which newFlags defines, is set.
func asJSON(fs *flag.FlagSet) bool {
	f := fs.Lookup("json")
	return f != nil && f.Value.String() == "true"
}

// loadArgs loads the spec files of fs; with -json, diagnostics come back as
// jsonDiagnostics.
func loadArgs(fs *flag.FlagSet) (*gen.Package, error) {
	pkg, err := load(fs.Args())
	var ds gen.Diagnostics
	if err != nil && asJSON(fs) && errors.As(err, &ds) {
		return nil, jsonDiagnostics{ds}
	}
	return pkg, err
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Bool("json", false, "print diagnostics (and, for check, the report and every search's result) as one JSON object on standard output")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: fsmgen %s\n\n%s.\n\n", synopsis(name), strings.ToUpper(purpose(name)[:1])+purpose(name)[1:])
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, flags and spec files in any order, and requires at
// least one spec file. The spec files are then fs.Args().
func parseFlags(fs *flag.FlagSet, args []string) error {
	files, err := interleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usageErr("%s: no spec files given", fs.Name())
	}
	return nil
}

// interleaved parses args with fs, taking the flags wherever they are: the flag
// package stops at the first argument that is not a flag, so parsing resumes
// after each. "--" ends the flags. The other arguments, in order, are returned
// and left in fs.Args().
func interleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		left := fs.Args()
		if len(left) == 0 {
			break
		}
		if used := len(args) - len(left); used > 0 && args[used-1] == "--" && !takesValue(fs, args[:used-1]) {
			rest = append(rest, left...)
			break
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
	// Leave the files where callers find them.
	if err := fs.Parse(append([]string{"--"}, rest...)); err != nil {
		return nil, err
	}
	return rest, nil
}

// takesValue reports whether the last of the parsed args is a flag that
// consumes the next argument as its value (-o --).
func takesValue(fs *flag.FlagSet, parsed []string) bool {
	if len(parsed) == 0 {
		return false
	}
	name, ok := strings.CutPrefix(parsed[len(parsed)-1], "-")
	if !ok || strings.Contains(name, "=") {
		return false
	}
	name = strings.TrimPrefix(name, "-")
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, isBool := f.Value.(interface{ IsBoolFlag() bool })
	return !isBool || !b.IsBoolFlag()
}

func load(paths []string) (*gen.Package, error) {
	var srcs []gen.Source
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, gen.Source{Path: p, Data: b})
	}
	return gen.Load(srcs...)
}

// emitter is what generate, classify and proptest share: an output directory and
// Go package, the specs, and the files one emitter owns in that directory.
type emitter struct {
	fs       *flag.FlagSet
	dir, pkg *string
	command  string
}

func newEmitter(name, pkgHelp string, all []string, stderr io.Writer) *emitter {
	fs := newFlags(name, stderr)
	return &emitter{
		fs:      fs,
		dir:     fs.String("o", ".", "output `directory`"),
		pkg:     fs.String("pkg", "", pkgHelp),
		command: "fsmgen " + strings.Join(all, " "),
	}
}

// target is what an emitter knows of the package it writes.
type target struct {
	name string // Go package name
	// path is the package's import path, from the nearest go.mod above the
	// output directory, or "" when there is none.
	path string
}

// run parses args, loads the specs, runs prepare (nil: nothing) on them, emits
// with emit and writes the files, removing the stale ones that match pattern.
// defaultPkg gives the package name when -pkg is not set, from the package
// found in the output directory ("" when there is none).
func (e *emitter) run(args []string, defaultPkg func(dirPkg string) string, prepare func(pkg *gen.Package) error, pattern string, emit func(pkg *gen.Package, t target) (map[string][]byte, error)) error {
	if err := parseFlags(e.fs, args); err != nil {
		return err
	}
	pkg, err := loadArgs(e.fs)
	if err != nil {
		return err
	}
	t := target{name: *e.pkg}
	if t.path, err = importPathOf(*e.dir); err != nil {
		return err
	}
	if t.name == "" {
		dirPkg, err := packageIn(*e.dir)
		if err != nil {
			return err
		}
		t.name = defaultPkg(dirPkg)
	}
	if prepare != nil {
		if err := prepare(pkg); err != nil {
			return err
		}
	}
	files, err := emit(pkg, t)
	if err != nil {
		return err
	}
	return writeFiles(*e.dir, files, pattern)
}

// machinesFlags are the flags of classify and proptest that name the machines'
// package.
type machinesFlags struct {
	cmd        string
	path, name *string
}

func addMachinesFlags(cmd string, fs *flag.FlagSet) *machinesFlags {
	return &machinesFlags{
		cmd:  cmd,
		path: fs.String("import", "", "import `path` of the package generated from the same specs (default: the output directory's package, its path told by go.mod)"),
		name: fs.String("importname", "", "Go package `name` of the -import package (default: the package clause of its Go files when they are in this module, else the last element of its path)"),
	}
}

// resolve returns the import path and package name of the machines, inferring
// what the flags leave out from the output package t.
func (f *machinesFlags) resolve(t target, dir string) (path, name string, err error) {
	path, name = *f.path, *f.name
	if path == "" {
		if t.path == "" {
			abs, _ := filepath.Abs(dir)
			return "", "", usageErr("%s: no go.mod above %s tells its import path: give the machines' package with -import", f.cmd, abs)
		}
		path = t.path
	}
	if name == "" && path == t.path {
		name = t.name
		if strings.HasSuffix(name, "_test") {
			name, err = packageIn(dir)
			if err != nil {
				return "", "", err
			}
		}
	}
	if name == "" {
		if d := dirOfImport(dir, path); d != "" {
			if name, err = packageIn(d); err != nil {
				return "", "", err
			}
		}
	}
	if name == "" {
		if name, err = gen.ImportName(path, ""); err != nil {
			return "", "", usageErr("%s: the package name of %s cannot be told from its path: give it with -importname", f.cmd, path)
		}
	}
	return path, name, nil
}

func generate(all, args []string, stderr io.Writer) error {
	e := newEmitter("generate", "Go package `name` (default: the package of the Go files in the output directory, else its base name)", all, stderr)
	nocheck := e.fs.Bool("nocheck", false, "write the machines without model-checking the tables first")
	prepare := func(pkg *gen.Package) error {
		if *nocheck {
			fmt.Fprintln(stderr, "fsmgen generate: -nocheck: the tables are validated but not model-checked")
			return nil
		}
		_, results, err := checkAll(pkg, nil)
		failed := failedOf(results)
		if err != nil {
			return err
		}
		if len(failed) > 0 {
			return fmt.Errorf("%s%s; nothing written (fsmgen check prints the whole report, -nocheck skips the check)", verify.Report(failed), violationSummary("fsmgen generate", failed))
		}
		return nil
	}
	return e.run(args, orBase(e.dir), prepare, "*_gen.go", func(pkg *gen.Package, t target) (map[string][]byte, error) {
		return gen.EmitGo(pkg, gen.GoOptions{Package: t.name, Command: e.command})
	})
}

func classify(all, args []string, stderr io.Writer) error {
	e := newEmitter("classify", "Go package `name` (default: the package of the Go files in the output directory, else its base name)", all, stderr)
	mf := addMachinesFlags("classify", e.fs)
	return e.run(args, orBase(e.dir), nil, "classify_*_gen.go", func(pkg *gen.Package, t target) (map[string][]byte, error) {
		path, name, err := mf.resolve(t, *e.dir)
		if err != nil {
			return nil, err
		}
		return gen.EmitClassifiers(pkg, gen.ClassifyOptions{Package: t.name, Path: t.path, Machines: path, MachinesName: name, Command: e.command})
	})
}

func proptest(all, args []string, stderr io.Writer) error {
	e := newEmitter("proptest", "Go package `name` of the tests (default: the output directory's package with _test appended)", all, stderr)
	mf := addMachinesFlags("proptest", e.fs)
	verifyPath := e.fs.String("verify", "github.com/fsmkernel/fsmkernel/verify", "import `path` of the verify package")
	xtest := func(dirPkg string) string { return orBase(e.dir)(dirPkg) + "_test" }
	return e.run(args, xtest, nil, "*prop_gen_test.go", func(pkg *gen.Package, t target) (map[string][]byte, error) {
		path, name, err := mf.resolve(t, *e.dir)
		if err != nil {
			return nil, err
		}
		// The tests load the specs at run time from their own directory.
		var specs []string
		for _, p := range e.fs.Args() {
			rel, err := filepath.Rel(*e.dir, p)
			if err != nil {
				return nil, err
			}
			specs = append(specs, filepath.ToSlash(rel))
		}
		return gen.EmitPropTests(pkg, gen.PropTestOptions{Package: t.name, Path: t.path, Machines: path, MachinesName: name, Verify: *verifyPath, Specs: specs, Command: e.command})
	})
}

// orBase returns the default package name of a directory: the package of its
// Go files, else its base name.
func orBase(dir *string) func(dirPkg string) string {
	return func(dirPkg string) string {
		if dirPkg != "" {
			return dirPkg
		}
		abs, err := filepath.Abs(*dir)
		if err != nil {
			return filepath.Base(*dir)
		}
		return filepath.Base(abs)
	}
}

// writeFiles writes generated files into dir and removes the stale ones: files
// matching pattern there that fsmgen wrote and no longer produces. generate owns
// every *_gen.go of its directory except classify_*; classify owns those;
// proptest owns *prop_gen_test.go.
func writeFiles(dir string, files map[string][]byte, pattern string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := removeStale(dir, files, pattern); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := writeIfChanged(filepath.Join(dir, n), files[n]); err != nil {
			return err
		}
	}
	return nil
}

func removeStale(dir string, keep map[string][]byte, pattern string) error {
	old, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return err
	}
	for _, p := range old {
		base := filepath.Base(p)
		if _, ok := keep[base]; ok || (pattern == "*_gen.go" && strings.HasPrefix(base, "classify_")) {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(b, []byte("// Code generated by \"fsmgen ")) {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeIfChanged leaves a file's modification time alone when its content is
// already right, so builds depending on it are not redone.
func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return os.WriteFile(path, b, 0o644)
}

// countFlags collects -count component=N.
type countFlags map[string]int

func (c countFlags) String() string { return fmt.Sprint(map[string]int(c)) }

func (c countFlags) Set(v string) error {
	name, n, ok := strings.Cut(v, "=")
	k, err := strconv.Atoi(n)
	if !ok || err != nil || k < 1 || k > 8 || name == "" {
		return fmt.Errorf("want component=N with N from 1 to 8, got %q", v)
	}
	c[name] = k
	return nil
}

func check(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	counts := countFlags{}
	fs.Var(counts, "count", "instances of a product `component=N` in the model check (repeatable)")
	cexDir := fs.String("counterexamples", "", "write each violation as a behaviour script, <machine or product>-<property>.txt, into `dir`")
	scriptDir := fs.String("scripts", "", "run the behaviour scripts `dir`/*.txt against the tables; a failing script fails the check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pkg, err := loadArgs(fs)
	if err != nil {
		return err // run prints the diagnostics, as JSON with -json
	}
	if len(counts) > 0 && len(pkg.Products) == 0 {
		return usageErr("check: -count is given but the files declare no product")
	}
	for _, pr := range pkg.Products {
		for name := range counts {
			found := false
			for _, c := range pr.Components {
				found = found || c.Name == name
			}
			if !found {
				return usageErr("check: -count names component %q, which product %q does not have", name, pr.Name)
			}
		}
	}
	report, results, err := checkAll(pkg, counts)
	if err != nil {
		return err
	}
	failed := failedOf(results)
	out := checkJSON{Report: report, Results: results}
	if *cexDir != "" {
		cs, err := writeCounterexamples(*cexDir, failed)
		if err != nil {
			return err
		}
		out.Counterexamples = &cs
		if !asJSON(fs) {
			fmt.Fprint(stderr, counterexampleLines(*cexDir, cs))
		}
	}
	if *scriptDir != "" {
		ss, err := runScripts(pkg, *scriptDir)
		if err != nil {
			return err
		}
		out.Scripts = &ss
		out.Report += scriptsReport(*scriptDir, ss)
	}
	if asJSON(fs) {
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
	} else if _, err := io.WriteString(stdout, out.Report); err != nil {
		return err
	}
	var verdicts []string
	if len(failed) > 0 {
		verdicts = append(verdicts, violationSummary("fsmgen check", failed))
	}
	if out.Scripts != nil {
		if n := scriptsFailed(*out.Scripts); n > 0 {
			verdicts = append(verdicts, fmt.Sprintf("fsmgen check: %d of %d scripts in %s failed", n, len(*out.Scripts), *scriptDir))
		}
	}
	if len(verdicts) > 0 {
		return errors.New(strings.Join(verdicts, "\n"))
	}
	return nil
}

// checkAll runs everything check proves on a loaded package: the validator's
// report per machine, the model check of every machine alone and of every
// product (with counts overriding instance numbers). It returns the report and
// every search's result; err is a search that could not run.
// generate runs it too, so the two cannot drift apart.
func checkAll(pkg *gen.Package, counts map[string]int) (report string, results []*verify.Result, err error) {
	report, err = gen.Report(pkg)
	if err != nil {
		return "", nil, err
	}
	for _, m := range pkg.Machines {
		r, err := verify.CheckMachine(pkg, m, verify.Options{})
		if err != nil {
			return "", nil, err
		}
		results = append(results, r)
	}
	for _, pr := range pkg.Products {
		r, err := verify.CheckProduct(pkg, pr, verify.Options{Counts: counts})
		if err != nil {
			return "", nil, err
		}
		results = append(results, r)
	}
	return report + "\n" + verify.Report(results), results, nil
}

// failedOf returns the searches that found violations.
func failedOf(results []*verify.Result) []*verify.Result {
	var failed []*verify.Result
	for _, r := range results {
		if !r.OK() {
			failed = append(failed, r)
		}
	}
	return failed
}

// checkJSON is what check -json prints: the diagnostics when the specs do not
// load; otherwise the text report and every search's result (its properties
// proven, its violations with their traces).
type checkJSON struct {
	Diagnostics []diagnosticJSON `json:"diagnostics,omitempty"`
	Report      string           `json:"report,omitempty"`
	Results     []*verify.Result `json:"results,omitempty"`
	// Counterexamples are the violations -counterexamples wrote (set, and
	// possibly empty, with the flag); Scripts the results of -scripts.
	Counterexamples *[]counterexampleJSON `json:"counterexamples,omitempty"`
	Scripts         *[]scriptJSON         `json:"scripts,omitempty"`
}

type diagnosticJSON struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Message string `json:"message"`
}

func diagnosticsJSON(ds gen.Diagnostics) []diagnosticJSON {
	out := make([]diagnosticJSON, len(ds))
	for i, d := range ds {
		out[i] = diagnosticJSON{File: d.Pos.File, Line: d.Pos.Line, Col: d.Pos.Col, Message: d.Msg}
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// violationSummary is the one-line verdict on failed searches.
func violationSummary(cmd string, failed []*verify.Result) string {
	var parts []string
	for _, r := range failed {
		parts = append(parts, fmt.Sprintf("%s violates %d propert%s", r.Name, len(r.Violations), map[bool]string{true: "y", false: "ies"}[len(r.Violations) == 1]))
	}
	return cmd + ": " + strings.Join(parts, "; ")
}

var spliceMarker = regexp.MustCompile(`(?s)(<!-- fsmgen:mermaid (\w+) -->\n).*?(<!-- fsmgen:end -->)`)

// spliceDiagrams replaces the marked blocks of a Markdown file with diagrams.
func spliceDiagrams(path string, pkg *gen.Package, opts gen.DiagramOptions) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var missing []string
	out := spliceMarker.ReplaceAllFunc(doc, func(block []byte) []byte {
		m := spliceMarker.FindSubmatch(block)
		for _, x := range pkg.Machines {
			if x.Name == string(m[2]) {
				return []byte(string(m[1]) + "```mermaid\n" + string(opts.Mermaid(pkg, x)) + "```\n" + string(m[3]))
			}
		}
		missing = append(missing, string(m[2]))
		return block
	})
	if len(missing) > 0 {
		return fmt.Errorf("fsmgen graph: %s marks diagrams of unknown machines: %s", path, strings.Join(missing, ", "))
	}
	opened := bytes.Count(doc, []byte("<!-- fsmgen:mermaid"))
	if opened == 0 {
		return fmt.Errorf("fsmgen graph: %s has no <!-- fsmgen:mermaid NAME --> markers", path)
	}
	if matched := len(spliceMarker.FindAll(doc, -1)); matched != opened {
		return fmt.Errorf("fsmgen graph: %s has %d <!-- fsmgen:mermaid NAME --> markers but %d well-formed blocks: each marker must be alone on its line and followed by <!-- fsmgen:end -->", path, opened, matched)
	}
	return writeIfChanged(path, out)
}

func graph(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("graph", stderr)
	format := fs.String("format", "dot", "diagram `format`: dot or mermaid")
	machine := fs.String("machine", "", "machine `name` (required when the files declare several)")
	out := fs.String("o", "", "output `file` (default: standard output)")
	splice := fs.String("splice", "", "Markdown `file` whose marked blocks are replaced by Mermaid diagrams of every machine")
	labels := fs.String("labels", "events", "edge `labels`: events (events and outcome values), or full (every row with its guard and actions)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "dot" && *format != "mermaid" {
		return usageErr("graph: -format must be dot or mermaid, not %q", *format)
	}
	labelMode, err := gen.ParseDiagramLabels(*labels)
	if err != nil {
		return usageErr("graph: -%v", err)
	}
	opts := gen.DiagramOptions{Labels: labelMode}
	pkg, err := loadArgs(fs)
	if err != nil {
		return err
	}
	if *splice != "" {
		return spliceDiagrams(*splice, pkg, opts)
	}
	var m *gen.Machine
	var names []string
	for _, x := range pkg.Machines {
		names = append(names, x.Name)
		if x.Name == *machine || (*machine == "" && len(pkg.Machines) == 1) {
			m = x
		}
	}
	if m == nil {
		if *machine == "" {
			return usageErr("graph: the files declare %d machines (%s); choose one with -machine", len(names), strings.Join(names, ", "))
		}
		return fmt.Errorf("fsmgen graph: no machine %q (have %s)", *machine, strings.Join(names, ", "))
	}
	b := opts.DOT(pkg, m)
	if *format == "mermaid" {
		b = opts.Mermaid(pkg, m)
	}
	if *out != "" {
		return writeIfChanged(*out, b)
	}
	_, err = stdout.Write(b)
	return err
}
