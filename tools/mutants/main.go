// Mutants shows what finds the mistakes that matter: it plants each named
// mutant (mutants.go) in a throwaway copy of the repository and times three
// judges on it.
//
// Usage:
//
//	go run ./tools/mutants [-run regexp] [-schedules n] [-cap d] [-seed s] [-repeat k] [-workers n] [-keep] [-list]
//
// It is what `make mutants` runs, from the repository's root. For each mutant
// whose name matches -run, it
//
//  1. copies the files git tracks or would track (with their working-tree
//     contents: uncommitted work is judged too) into a temporary directory
//     and applies the mutant's edits; an edit whose old text does not occur
//     exactly once makes the mutant stale, and the command fails before
//     running anything;
//  2. for a mutant of spec/ (and the unmutated tree), regenerates what the
//     //go:generate lines of statemachine/, sockets/ and verify/ generate
//     (fsmgen generate with -nocheck, so that the model checker is judged on
//     its own; the diagrams are skipped); a table the generator refuses is
//     caught by the generator;
//  3. runs the judges, timing each: the model checker (fsmgen check over
//     spec/ and spec/model/, as make check does), the behaviour scripts and
//     the generated property tests (TestBehaviourScripts in statemachine;
//     TestKernelScriptsOnTables and the three Test*MatchesReference in
//     verify), and the simulator's search (TestSwarmSearch, -schedules
//     schedules from seed -seed, without the race detector, stopped at its
//     first failure or after -cap), recording the contract the failure names,
//     its seed and the seconds to it. The checker and the scripts read only the
//     tables, so for a runtime mutant they are not run ("-").
//
// With -repeat k the search runs k times, from seeds -seed, -seed+n, ...
// (n = -schedules), and the table gives the median time to a kill. Before the
// mutants the unmutated tree is searched the same way: it must survive, or the
// command fails. It prints one line per judge as it goes, then the table
// (Markdown), and exits 1 if a mutant is stale or the tree itself fails.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

func main() {
	var (
		run       = flag.String("run", "", "only the mutants whose name matches this regexp")
		schedules = flag.Int("schedules", 20000, "schedules per search")
		limit     = flag.Duration("cap", 3*time.Minute, "stop a search after this long")
		seed      = flag.Uint64("seed", 1, "the first seed of the first search")
		repeat    = flag.Int("repeat", 1, "searches per mutant, from consecutive ranges of seeds")
		workers   = flag.Int("workers", 0, "the search's -sim.workers (0: GOMAXPROCS)")
		keep      = flag.Bool("keep", false, "keep the copies (their paths are printed)")
		list      = flag.Bool("list", false, "list the mutants and exit")
	)
	flag.Parse()
	re, err := regexp.Compile(*run)
	if err != nil {
		fatal(err)
	}
	var chosen []mutant
	for _, m := range mutants {
		if re.MatchString(m.Name) {
			chosen = append(chosen, m)
		}
	}
	if *list {
		for _, m := range chosen {
			fmt.Printf("%-40s %-24s %s\n", m.Name, m.Kind, m.Desc)
		}
		return
	}
	root, err := gitRoot()
	if err != nil {
		fatal(err)
	}
	files, err := trackedFiles(root)
	if err != nil {
		fatal(err)
	}
	// Every mutant must still apply to this tree before anything runs.
	stale := false
	for _, m := range chosen {
		if _, err := m.apply(func(f string) ([]byte, error) { return os.ReadFile(filepath.Join(root, f)) }); err != nil {
			fmt.Fprintln(os.Stderr, "mutants:", err)
			stale = true
		}
	}
	if stale {
		os.Exit(1)
	}
	// One snapshot of the tree for every mutant, so that edits made while
	// the harness runs judge nothing.
	snap, err := os.MkdirTemp("", "fsmkernel-mutants-tree-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(snap)
	if err := copyFiles(root, snap, files); err != nil {
		fatal(err)
	}
	cfg := searchConfig{schedules: *schedules, limit: *limit, seed: *seed, repeat: *repeat, workers: *workers}
	h := &harness{root: snap, files: files, cfg: cfg, keep: *keep}

	base := h.judge(mutant{Name: "(none)", Kind: "the tree as it is"})
	failed := base.generator.killed || base.checker.killed || base.scripts.killed || base.simKilled()
	results := []result{base}
	if !failed {
		for _, m := range chosen {
			results = append(results, h.judge(m))
		}
	}
	fmt.Println()
	printTable(os.Stdout, results, cfg)
	if failed {
		os.RemoveAll(snap)
		fatal(errors.New("the unmutated tree fails a judge: no mutant can be judged against it"))
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mutants:", err)
	os.Exit(1)
}

// apply returns the mutated contents of the files m edits, read with read; an
// edit whose old text does not occur exactly once is an error.
func (m mutant) apply(read func(file string) ([]byte, error)) (map[string][]byte, error) {
	out := map[string][]byte{}
	for i, e := range m.Edits {
		src, ok := out[e.File]
		if !ok {
			b, err := read(e.File)
			if err != nil {
				return nil, fmt.Errorf("mutant %s, edit %d: %w", m.Name, i+1, err)
			}
			src = b
		}
		next, err := applyEdit(src, e)
		if err != nil {
			return nil, fmt.Errorf("mutant %s, edit %d: %w", m.Name, i+1, err)
		}
		out[e.File] = next
	}
	return out, nil
}

// applyEdit replaces e.Old, which must occur exactly once in src, by e.New.
func applyEdit(src []byte, e edit) ([]byte, error) {
	if e.Old == "" || e.Old == e.New {
		return nil, fmt.Errorf("%s: an edit must replace some text by other text", e.File)
	}
	if n := bytes.Count(src, []byte(e.Old)); n != 1 {
		return nil, fmt.Errorf("%s: stale: the old text occurs %d times, not once: %q", e.File, n, firstLine(e.Old))
	}
	return bytes.Replace(src, []byte(e.Old), []byte(e.New), 1), nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

func gitRoot() (string, error) {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse --show-toplevel: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func trackedFiles(root string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %w", err)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files, nil
}

// harness judges mutants in copies of the tree at root (a snapshot).
type harness struct {
	root  string
	files []string
	cfg   searchConfig
	keep  bool
}

// verdict is one judge's answer.
type verdict struct {
	ran    bool
	killed bool
	why    string // what failed: a property, a test, an error
	secs   float64
}

// result is a mutant's verdicts.
type result struct {
	m                           mutant
	generator, checker, scripts verdict
	searches                    []search
}

func (r result) simKilled() bool {
	for _, s := range r.searches {
		if s.killed {
			return true
		}
	}
	return false
}

// judge copies the tree, plants m and runs the judges on it.
func (h *harness) judge(m mutant) result {
	res := result{m: m}
	dir, err := os.MkdirTemp("", "fsmkernel-mutant-")
	if err != nil {
		fatal(err)
	}
	if h.keep {
		fmt.Printf("%s: copy in %s\n", m.Name, dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if err := copyFiles(h.root, dir, h.files); err != nil {
		fatal(err)
	}
	edited, err := m.apply(func(f string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, f)) })
	if err != nil {
		fatal(err)
	}
	for f, b := range edited {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			fatal(err)
		}
	}
	bin := filepath.Join(dir, ".mutants")
	if err := os.Mkdir(bin, 0o755); err != nil {
		fatal(err)
	}
	fsmgen := filepath.Join(bin, "fsmgen")
	if out, err := goCmd(dir, "build", "-trimpath", "-o", fsmgen, "./cmd/fsmgen"); err != nil {
		fatal(fmt.Errorf("%s: building fsmgen: %v\n%s", m.Name, err, out))
	}
	// The unmutated tree is regenerated too: the regeneration itself must
	// pass every judge.
	tables := m.isTable() || m.Name == "(none)"
	if tables {
		res.generator = timed(func() (bool, string) { return regenerate(dir, fsmgen) })
		report(m.Name, "generator", res.generator)
		if res.generator.killed {
			return res
		}
	}
	if tables {
		res.checker = timed(func() (bool, string) { return check(dir, fsmgen) })
		report(m.Name, "checker", res.checker)
		res.scripts = timed(func() (bool, string) { return scripts(dir) })
		report(m.Name, "scripts", res.scripts)
	}
	test := filepath.Join(bin, "looptest.test")
	if out, err := goCmd(dir, "test", "-trimpath", "-c", "-o", test, "./loop/looptest"); err != nil {
		// A mutant that does not build is the compiler's catch, not the search's.
		res.searches = []search{{killed: true, contract: "build", detail: firstLine(string(out))}}
		fmt.Printf("%-40s simulator  killed: does not build: %s\n", m.Name, firstLine(string(out)))
		return res
	}
	for r := range h.cfg.repeat {
		s := runSearch(dir, test, h.cfg, h.cfg.seed+uint64(r*h.cfg.schedules))
		res.searches = append(res.searches, s)
		if s.killed {
			fmt.Printf("%-40s simulator  killed in %.1fs: %s at seed %s (%s)\n", m.Name, s.secs, s.contract, s.seed, firstLine(s.detail))
		} else {
			fmt.Printf("%-40s simulator  survived %s\n", m.Name, s.progress)
		}
	}
	return res
}

func report(name, judge string, v verdict) {
	state := "survived"
	if v.killed {
		state = "killed"
	}
	fmt.Printf("%-40s %-10s %s in %.1fs %s\n", name, judge, state, v.secs, v.why)
}

func timed(f func() (killed bool, why string)) verdict {
	start := time.Now()
	killed, why := f()
	return verdict{ran: true, killed: killed, why: why, secs: time.Since(start).Seconds()}
}

func copyFiles(from, to string, files []string) error {
	for _, f := range files {
		src := filepath.Join(from, f)
		info, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, info.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// goCmd runs the go command in dir and returns its combined output.
func goCmd(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// generateLine is a //go:generate line that runs fsmgen from its directory.
var generateLine = regexp.MustCompile(`(?m)^//go:generate go run \.\./cmd/fsmgen (\S+)(.*)$`)

// regenerate runs the fsmgen //go:generate lines of the generated packages
// with the binary fsmgen: generate with -nocheck, no diagrams. It reports
// whether the generator refused the tables.
func regenerate(dir, fsmgen string) (bool, string) {
	for _, pkg := range []string{"statemachine", "sockets", "verify"} {
		src, err := os.ReadFile(filepath.Join(dir, pkg, "doc.go"))
		if err != nil {
			fatal(err)
		}
		lines := generateLine.FindAllStringSubmatch(string(src), -1)
		if len(lines) == 0 {
			fatal(fmt.Errorf("%s/doc.go: no //go:generate line runs ../cmd/fsmgen", pkg))
		}
		for _, l := range lines {
			sub, args := l[1], strings.Fields(l[2])
			if sub == "graph" {
				continue
			}
			if sub == "generate" {
				args = append([]string{"-nocheck"}, args...)
			}
			cmd := exec.Command(fsmgen, append([]string{sub}, args...)...)
			cmd.Dir = filepath.Join(dir, pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				return true, fmt.Sprintf("fsmgen %s (%s): %s", sub, pkg, firstLine(string(out)))
			}
		}
	}
	return false, ""
}

// check runs the model checker on every table, as make check does, and
// returns the first property it reports broken.
func check(dir, fsmgen string) (bool, string) {
	var specs []string
	for _, pat := range []string{"spec/*.yaml", "spec/model/*.yaml"} {
		found, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, f := range found {
			rel, _ := filepath.Rel(dir, f)
			specs = append(specs, rel)
		}
	}
	cmd := exec.Command(fsmgen, append([]string{"check"}, specs...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		return false, ""
	}
	return true, checkViolation(string(out))
}

var (
	checkHeader = regexp.MustCompile(`^check (\S+?):`)
	violated    = regexp.MustCompile(`^\s*VIOLATED (.+?): (.*)$`)
	invariant   = regexp.MustCompile(`^invariant "?([^"\s]+)`)
)

// checkViolation names the first property a failed check reports broken, with
// its machine ("channel: obligation writesSettle", "channel: invariant
// rearmedBeforeCycleEnds"), or else the first line of its output (a table that
// does not load).
func checkViolation(out string) string {
	machine := ""
	for _, l := range strings.Split(out, "\n") {
		if m := checkHeader.FindStringSubmatch(l); m != nil {
			machine = m[1]
		}
		if m := violated.FindStringSubmatch(l); m != nil {
			prop := m[1]
			if i := invariant.FindStringSubmatch(m[2]); m[1] == "invariants" && i != nil {
				prop = "invariant " + i[1]
			}
			return machine + ": " + prop
		}
	}
	return firstLine(out)
}

// scripts runs the behaviour scripts on the generated machines and on the
// tables, and the generated property tests, returning the first test that
// failed.
func scripts(dir string) (bool, string) {
	var failed []string
	for _, t := range []struct{ pkg, run string }{
		{"./statemachine", "^TestBehaviourScripts$"},
		{"./verify", "^(TestKernelScriptsOnTables|TestChannelMatchesReference|TestListenerMatchesReference|TestEventloopMatchesReference)$"},
	} {
		out, err := goCmd(dir, "test", "-trimpath", "-count=1", "-run", t.run, t.pkg)
		if err == nil {
			continue
		}
		failed = append(failed, failedTests(string(out))...)
	}
	if len(failed) == 0 {
		return false, ""
	}
	if len(failed) > 3 {
		return true, fmt.Sprintf("%s and %d more", strings.Join(failed[:3], ", "), len(failed)-3)
	}
	return true, strings.Join(failed, ", ")
}

var failLine = regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`)

// failedTests lists the innermost failed tests of go test's output (a
// subtest, not its parent), or its first line when none is named (a build
// failure).
func failedTests(out string) []string {
	var names []string
	for _, m := range failLine.FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	var inner []string
	for _, n := range names {
		if !slices.ContainsFunc(names, func(o string) bool { return strings.HasPrefix(o, n+"/") }) {
			inner = append(inner, n)
		}
	}
	if len(inner) == 0 {
		return []string{firstLine(out)}
	}
	return inner
}

// searchConfig bounds each search.
type searchConfig struct {
	schedules int
	limit     time.Duration
	seed      uint64
	repeat    int
	workers   int
}

// search is one run of TestSwarmSearch.
type search struct {
	killed   bool
	contract string // the contract the first failure names: D2, write-once, ...; crash or build
	detail   string
	seed     string // the first failing schedule's seed
	replay   string // its replay token
	secs     float64
	progress string // the search's last progress line: schedules, rate
}

var (
	brokeLine    = regexp.MustCompile(`schedule broke \d+ contract\(s\); the first:`)
	contractLine = regexp.MustCompile(`^\s*([A-Za-z0-9-]+): (.*)$`)
	seedLine     = regexp.MustCompile(`^\s*schedule: seed (0x[0-9a-f]+)`)
	replayLine   = regexp.MustCompile(`-sim\.replay=(\S+)`)
	progressLine = regexp.MustCompile(`(\d+ schedules in [0-9.]+s: \d+/s)`)
	simPanic     = regexp.MustCompile(`^panic: looptest: (\S+) at seed (0x[0-9a-f]+): (.*)$`)
)

// runSearch runs the compiled looptest binary's TestSwarmSearch from seed,
// and stops it at its first failure or at the cap.
func runSearch(dir, test string, cfg searchConfig, seed uint64) search {
	cmd := exec.Command(test, "-test.run", "^TestSwarmSearch$", "-test.v", "-test.timeout", "0",
		fmt.Sprintf("-sim.schedules=%d", cfg.schedules), fmt.Sprintf("-sim.seed=%d", seed), fmt.Sprintf("-sim.workers=%d", cfg.workers))
	cmd.Dir = filepath.Join(dir, "loop", "looptest")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	timer := time.AfterFunc(cfg.limit, func() { cmd.Process.Kill() })
	defer timer.Stop()

	var (
		s    search
		tail []string // output after the first failure, or all of it for a crash
		all  []string
	)
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := progressLine.FindStringSubmatch(line); m != nil {
			s.progress = m[1]
		}
		if len(all) < 400 {
			all = append(all, line)
		}
		if !s.killed && brokeLine.MatchString(line) {
			s.killed, s.secs = true, time.Since(start).Seconds()
			tail = []string{}
			continue
		}
		if tail == nil {
			continue
		}
		tail = append(tail, line)
		if s.contract == "" && strings.TrimSpace(line) != "" {
			if m := contractLine.FindStringSubmatch(line); m != nil {
				s.contract, s.detail = m[1], m[2]
			}
		}
		if m := seedLine.FindStringSubmatch(line); m != nil && s.seed == "" {
			s.seed = m[1]
		}
		if m := replayLine.FindStringSubmatch(line); m != nil && s.replay == "" {
			s.replay = m[1]
			cmd.Process.Kill() // the first failure is all a judge needs
		}
	}
	err := <-exited
	if !s.killed && err != nil && time.Since(start) < cfg.limit {
		// No schedule reported, yet the binary failed: a panic that escaped
		// the simulation, or a deadlock the test framework caught.
		s.killed, s.secs, s.contract = true, time.Since(start).Seconds(), "crash"
		for _, l := range all {
			if m := simPanic.FindStringSubmatch(l); m != nil {
				// The simulator's own panic, for a run that cannot end.
				s.contract, s.seed, s.detail = m[1], m[2], m[3]
				break
			}
			if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") || strings.Contains(l, "--- FAIL") {
				s.detail = strings.TrimSpace(l)
				break
			}
		}
	}
	if !s.killed {
		s.secs = time.Since(start).Seconds()
		if s.progress == "" {
			s.progress = fmt.Sprintf("%.0fs", s.secs)
		}
	}
	return s
}

// printTable writes the results as a Markdown table.
func printTable(w io.Writer, results []result, cfg searchConfig) {
	fmt.Fprintf(w, "Searches: up to %d schedules from seed %d, capped at %v, %d per mutant.\n\n", cfg.schedules, cfg.seed, cfg.limit, cfg.repeat)
	fmt.Fprintln(w, "| mutant | kind | generator | checker | scripts | simulator |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.m.Name, r.m.Kind,
			cell(r.generator), cell(r.checker), cell(r.scripts), simCell(r.searches))
	}
}

func cell(v verdict) string {
	switch {
	case !v.ran:
		return "-"
	case v.killed:
		return fmt.Sprintf("**killed** (%s; %.0fs)", escape(v.why), v.secs)
	default:
		return fmt.Sprintf("survived (%.0fs)", v.secs)
	}
}

func simCell(ss []search) string {
	if len(ss) == 0 {
		return "-"
	}
	var kills []search
	for _, s := range ss {
		if s.killed {
			kills = append(kills, s)
		}
	}
	if len(kills) == 0 {
		return fmt.Sprintf("survived (%s)", ss[len(ss)-1].progress)
	}
	secs := make([]float64, len(kills))
	for i, k := range kills {
		secs[i] = k.secs
	}
	slices.Sort(secs)
	first := kills[0]
	at := ""
	if first.seed != "" {
		at = ", seed " + first.seed
	}
	runs := ""
	if len(ss) > 1 {
		runs = fmt.Sprintf(", %d of %d searches, median", len(kills), len(ss))
	}
	return fmt.Sprintf("**killed**: %s%s%s %.2fs", first.contract, at, runs, secs[len(secs)/2])
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
