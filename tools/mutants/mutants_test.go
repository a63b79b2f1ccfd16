package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMutantsApply keeps the list honest without regenerating or searching:
// every mutant's every edit still matches its file in this tree exactly once,
// and changes it. A mutant whose text moved away fails here, in make test,
// instead of silently judging nothing.
func TestMutantsApply(t *testing.T) {
	root := filepath.Join("..", "..")
	read := func(f string) ([]byte, error) { return os.ReadFile(filepath.Join(root, f)) }
	for _, m := range mutants {
		edited, err := m.apply(read)
		if err != nil {
			t.Error(err)
			continue
		}
		for f, b := range edited {
			orig, _ := read(f)
			if string(orig) == string(b) {
				t.Errorf("mutant %s leaves %s unchanged", m.Name, f)
			}
		}
	}
}

// TestMutantList: names are unique and usable with -run, every mutant says
// what it plants, of a known kind, in the files the harness knows how to
// judge; there are at least ten table mutants, and one runtime mutant per
// symptom of issue 12.
func TestMutantList(t *testing.T) {
	kinds := map[string]bool{kindDropped: true, kindTarget: true, kindArm: true, kindErrno: true, kindRow: true, kindRevert: true}
	name := regexp.MustCompile(`^[a-z0-9-]+$`)
	seen := map[string]bool{}
	tables, symptoms := 0, map[string]bool{}
	for _, m := range mutants {
		if !name.MatchString(m.Name) || seen[m.Name] {
			t.Errorf("mutant name %q: not unique or not [a-z0-9-]+", m.Name)
		}
		seen[m.Name] = true
		if !kinds[m.Kind] {
			t.Errorf("mutant %s: unknown kind %q", m.Name, m.Kind)
		}
		if m.Desc == "" || strings.Contains(m.Desc, "\n") {
			t.Errorf("mutant %s: the description must be one line", m.Name)
		}
		if len(m.Edits) == 0 {
			t.Errorf("mutant %s: no edits", m.Name)
		}
		for _, e := range m.Edits {
			ok := strings.HasPrefix(e.File, "spec/") && strings.HasSuffix(e.File, ".yaml") ||
				(strings.HasPrefix(e.File, "loop/") || strings.HasPrefix(e.File, "sockets/")) && strings.HasSuffix(e.File, ".go") && !strings.HasSuffix(e.File, "_test.go")
			if !ok {
				t.Errorf("mutant %s edits %s: only spec/*.yaml and the runtime's loop/*.go and sockets/*.go", m.Name, e.File)
			}
		}
		if m.Kind == kindRevert {
			if s, _, ok := strings.Cut(strings.TrimPrefix(m.Name, "i12-"), "-"); ok {
				symptoms[s] = true
			}
		} else if m.isTable() {
			tables++
		}
	}
	if tables < 10 {
		t.Errorf("%d table mutants; the issue asks for at least 10", tables)
	}
	for _, s := range []string{"1", "2", "3", "4", "5", "6"} {
		if !symptoms[s] {
			t.Errorf("no reverted fix of issue 12's symptom %s", s)
		}
	}
}

// TestApplyEditStale: an edit applies only where its old text occurs once.
func TestApplyEditStale(t *testing.T) {
	e := edit{File: "f", Old: "b", New: "x"}
	if got, err := applyEdit([]byte("abc"), e); err != nil || string(got) != "axc" {
		t.Errorf("once: got %q, %v", got, err)
	}
	for _, src := range []string{"ac", "abcb"} {
		if _, err := applyEdit([]byte(src), e); err == nil || !strings.Contains(err.Error(), "stale") {
			t.Errorf("%q: want a stale error, got %v", src, err)
		}
	}
	if _, err := applyEdit([]byte("abc"), edit{File: "f", Old: "b", New: "b"}); err == nil {
		t.Error("an edit that changes nothing was accepted")
	}
}

// TestFailedTests: the scripts' judge names the innermost failed tests.
func TestFailedTests(t *testing.T) {
	out := "--- FAIL: TestBehaviourScripts (0.01s)\n    --- FAIL: TestBehaviourScripts/r2-short-read (0.00s)\nFAIL\n"
	if got := failedTests(out); len(got) != 1 || got[0] != "TestBehaviourScripts/r2-short-read" {
		t.Errorf("got %q", got)
	}
	if got := failedTests("# pkg\n./x.go:1: undefined: y\n"); len(got) != 1 || got[0] != "# pkg ..." {
		t.Errorf("a build failure: got %q", got)
	}
}

// TestCheckViolation: the checker's judge names the machine and the property
// of fsmgen check's first violation.
func TestCheckViolation(t *testing.T) {
	for out, want := range map[string]string{
		"check channel: FAILED\n  1 configurations\n  VIOLATED invariants: invariant \"rearmedBeforeCycleEnds\" (spec/channel.yaml:448:13) does not hold in active\n": "channel: invariant rearmedBeforeCycleEnds",
		"check eventloop: ok\ncheck channel: FAILED\n  VIOLATED obligation writesSettle: obligation \"writesSettle\" (spec/channel.yaml:1:1): after\n":                "channel: obligation writesSettle",
		"spec/channel.yaml:3:4: unknown action \"x\"\n": "spec/channel.yaml:3:4: unknown action \"x\"",
	} {
		if got := checkViolation(out); got != want {
			t.Errorf("%q: got %q, want %q", out, got, want)
		}
	}
}
