package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fsmkernel/fsmkernel/gen"
	"github.com/fsmkernel/fsmkernel/verify"
)

// check -counterexamples DIR writes the shortest trace of each violation, of a
// machine alone or of a product, as a behaviour script
// (verify.Violation.Script) into DIR; check -scripts DIR runs
// the scripts of DIR against the tables (verify.RunScript). A counterexample
// script fails until the table is fixed, so the two together turn a violation
// into a regression test: fsmgen check -counterexamples testdata/cex spec.yaml,
// fix the table, and fsmgen check -scripts testdata/cex spec.yaml passes.

// counterexampleJSON is one violation as check -counterexamples handled it.
type counterexampleJSON struct {
	Search   string `json:"search"`
	Property string `json:"property"`
	// File is the script written, or "" when none could be: Unwritten says why.
	File      string `json:"file,omitempty"`
	Unwritten string `json:"unwritten,omitempty"`
}

// writeCounterexamples writes the script of every violation of the failed
// searches into dir, creating it when some script is written.
func writeCounterexamples(dir string, failed []*verify.Result) ([]counterexampleJSON, error) {
	out := []counterexampleJSON{}
	for _, r := range failed {
		for _, v := range r.Violations {
			c := counterexampleJSON{Search: r.Name, Property: v.Property}
			name, script, ok := v.Script()
			if !ok {
				c.Unwritten = "the violation has no trace the search took"
				out = append(out, c)
				continue
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			c.File = filepath.Join(dir, name+".txt")
			if err := writeIfChanged(c.File, script); err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// counterexampleLines says on standard error what writeCounterexamples did.
func counterexampleLines(dir string, cs []counterexampleJSON) string {
	if len(cs) == 0 {
		return fmt.Sprintf("fsmgen check: no violations: no counterexample written to %s\n", dir)
	}
	var b strings.Builder
	for _, c := range cs {
		if c.File != "" {
			fmt.Fprintf(&b, "fsmgen check: %s: %s: wrote %s\n", c.Search, c.Property, c.File)
		} else {
			fmt.Fprintf(&b, "fsmgen check: %s: %s: no script written (%s)\n", c.Search, c.Property, c.Unwritten)
		}
	}
	return b.String()
}

// scriptJSON is the result of one behaviour script run by check -scripts.
type scriptJSON struct {
	File     string   `json:"file"`
	Failures []string `json:"failures,omitempty"`
}

// runScripts runs every *.txt of dir against the tables of pkg, in name order.
func runScripts(pkg *gen.Package, dir string) ([]scriptJSON, error) {
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("fsmgen check: -scripts %s: no such directory", dir)
		}
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	out := []scriptJSON{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		s := scriptJSON{File: f}
		for _, err := range verify.RunScript(pkg, f, src) {
			s.Failures = append(s.Failures, err.Error())
		}
		out = append(out, s)
	}
	return out, nil
}

// scriptsFailed counts the scripts that failed.
func scriptsFailed(ss []scriptJSON) int {
	n := 0
	for _, s := range ss {
		if len(s.Failures) > 0 {
			n++
		}
	}
	return n
}

// scriptsReport renders the scripts' results after check's report.
func scriptsReport(dir string, ss []scriptJSON) string {
	var b strings.Builder
	failed := scriptsFailed(ss)
	fmt.Fprintf(&b, "scripts %s: %d passed, %d failed\n", dir, len(ss)-failed, failed)
	for _, s := range ss {
		if len(s.Failures) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  FAILED %s\n", s.File)
		for _, f := range s.Failures {
			b.WriteString("    " + strings.ReplaceAll(f, "\n", "\n    ") + "\n")
		}
	}
	return b.String()
}
