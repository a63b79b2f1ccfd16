package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// brokenCopy writes src with old replaced by new into dir/name and returns its
// path.
func brokenCopy(t *testing.T, dir, name, src, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", src, old)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCheck(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	code = run(append([]string{"check"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func txtFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	return names
}

// TestCounterexamples: check -counterexamples writes one behaviour script per
// violation of a broken table, each failing at its last line against the broken
// table (check -scripts) and passing against the table it was broken from.
func TestCounterexamples(t *testing.T) {
	cases := []struct {
		name       string
		broken     func(dir string) []string // the spec files, broken
		fixed      []string
		want       []string // the scripts written
		wantReport []string
	}{
		{
			name: "breaker: an invariant and a multiplicity",
			broken: func(dir string) []string {
				p := brokenCopy(t, dir, "breaker.yaml", filepath.Join("testdata", "breaker.yaml"), "to: open, do: [trip], set: {failures: 0}}", "to: open, do: [trip]}")
				b, _ := os.ReadFile(p)
				if err := os.WriteFile(p, []byte(strings.Replace(string(b), "do: [stopTimer], set: {failures: 0}}", "do: [stopTimer, stopTimer], set: {failures: 0}}", 1)), 0o644); err != nil {
					t.Fatal(err)
				}
				return []string{p}
			},
			fixed: []string{filepath.Join("testdata", "breaker.yaml")},
			want:  []string{"breaker-invariant-countsOnlyWhenClosed.txt", "breaker-multiplicities.txt"},
			wantReport: []string{
				"breaker-invariant-countsOnlyWhenClosed.txt:12: want breaker holds invariant countsOnlyWhenClosed",
				`got:  invariant "countsOnlyWhenClosed"`,
				"breaker-multiplicities.txt:10: want breaker holds multiplicities",
				`got:  broken at line 9 (step breaker stop): action "stopTimer" more than 1 time(s)`,
			},
		},
		{
			name: "channel: a drain mid-cycle drops readComplete",
			broken: func(dir string) []string {
				return []string{"../../spec/outcomes.yaml", brokenCopy(t, dir, "channel.yaml", "../../spec/channel.yaml",
					"on: drain, when: output == idle, to: closing, do: [{when: delivered, do: [readComplete]}, deregister]",
					"on: drain, when: output == idle, to: closing, do: [deregister]")}
			},
			fixed: []string{"../../spec/outcomes.yaml", "../../spec/channel.yaml"},
			want:  []string{"channel-obligation-readCycleEndsWithReadComplete.txt"},
			wantReport: []string{
				"want channel holds obligation readCycleEndsWithReadComplete",
				`got:  broken at line `,
				`obligation "readCycleEndsWithReadComplete"`,
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			broken := c.broken(tmp)
			dir := filepath.Join(tmp, "cex")
			code, stdout, stderr := runCheck(t, append([]string{"-counterexamples", dir}, broken...)...)
			if code != 1 || !strings.Contains(stdout, "VIOLATED") {
				t.Fatalf("check of the broken table: exit %d, want 1\n%s%s", code, stdout, stderr)
			}
			if got := txtFiles(t, dir); !slices.Equal(got, c.want) {
				t.Fatalf("wrote %q, want %q\n%s", got, c.want, stderr)
			}
			for _, f := range c.want {
				if !strings.Contains(stderr, "wrote "+filepath.Join(dir, f)+"\n") {
					t.Errorf("stderr does not say it wrote %s:\n%s", f, stderr)
				}
				b, _ := os.ReadFile(filepath.Join(dir, f))
				if !strings.HasPrefix(string(b), "# Counterexample: ") {
					t.Errorf("%s does not start with a comment naming what it shows:\n%s", f, b)
				}
			}
			// Against the broken table every script fails, at its last line.
			code, stdout, stderr = runCheck(t, append([]string{"-scripts", dir}, broken...)...)
			if code != 1 || !strings.Contains(stdout, "0 passed, "+itoa(len(c.want))+" failed") || !strings.Contains(stderr, itoa(len(c.want))+" of "+itoa(len(c.want))+" scripts in "+dir+" failed") {
				t.Fatalf("scripts on the broken table: exit %d\n%s%s", code, stdout, stderr)
			}
			for _, w := range c.wantReport {
				if !strings.Contains(stdout, w) {
					t.Errorf("the scripts' report has no %q:\n%s", w, stdout)
				}
			}
			for _, f := range c.want {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				last := strings.Count(string(b), "\n")
				if !strings.Contains(stdout, filepath.Join(dir, f)+":"+itoa(last)+": want ") {
					t.Errorf("%s does not fail at its last line %d:\n%s", f, last, stdout)
				}
			}
			// Against the table it was broken from, every script passes.
			code, stdout, stderr = runCheck(t, append([]string{"-scripts", dir}, c.fixed...)...)
			if code != 0 || !strings.Contains(stdout, itoa(len(c.want))+" passed, 0 failed") {
				t.Fatalf("scripts on the fixed table: exit %d\n%s%s", code, stdout, stderr)
			}
		})
	}
}

var itoa = strconv.Itoa

// TestCounterexamplesNone: a table without violations writes nothing, creates
// no directory, and says so.
func TestCounterexamplesNone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cex")
	code, _, stderr := runCheck(t, "-counterexamples", dir, filepath.Join("testdata", "breaker.yaml"))
	if code != 0 || stderr != "fsmgen check: no violations: no counterexample written to "+dir+"\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s was created: %v", dir, err)
	}
	code, stdout, stderr := runCheck(t, "-json", "-counterexamples", dir, filepath.Join("testdata", "breaker.yaml"))
	if code != 0 || stderr != "" || !strings.Contains(stdout, `"counterexamples": []`) {
		t.Errorf("-json: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	code, _, stderr = runCheck(t, "-scripts", dir, filepath.Join("testdata", "breaker.yaml"))
	if code != 1 || !strings.Contains(stderr, "-scripts "+dir+": no such directory") {
		t.Errorf("-scripts of a missing directory: exit %d, stderr %q", code, stderr)
	}
}

// TestCounterexamplesJSON: with -json, the written scripts and the scripts'
// results are in the JSON object; a product's violation is written as a
// script of the product, failing on the broken product and passing on the toy.
func TestCounterexamplesJSON(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "cex")
	toy := "../../verify/testdata/"
	product := brokenCopy(t, tmp, "toyproduct.yaml", toy+"toyproduct.yaml", ", onReject: refused}", "}")
	specs := []string{toy + "toyloop.yaml", toy + "toychannel.yaml"}
	code, stdout, stderr := runCheck(t, append([]string{"-json", "-counterexamples", dir}, append(specs, product)...)...)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	var got struct {
		Counterexamples []struct{ Search, Property, File, Unwritten string }
		Scripts         []struct {
			File     string
			Failures []string
		}
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	file := filepath.Join(dir, "toy-syncAccepted.txt")
	if len(got.Counterexamples) != 1 || got.Counterexamples[0].Property != "sync events accepted" || got.Counterexamples[0].File != file || got.Counterexamples[0].Unwritten != "" {
		t.Fatalf("counterexamples %+v, want the product's violation in %s", got.Counterexamples, file)
	}
	code, stdout, _ = runCheck(t, append([]string{"-json", "-scripts", dir}, append(specs, product)...)...)
	got.Counterexamples, got.Scripts = nil, nil
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != 1 || len(got.Scripts) != 1 || len(got.Scripts[0].Failures) != 1 || !strings.Contains(got.Scripts[0].Failures[0], "want toy holds syncAccepted") {
		t.Errorf("the product's script on the broken product: exit %d, %+v (%v)", code, got.Scripts, err)
	}
	code, stdout, _ = runCheck(t, append([]string{"-json", "-scripts", dir}, append(specs, toy+"toyproduct.yaml")...)...)
	got.Counterexamples, got.Scripts = nil, nil
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != 0 || len(got.Scripts) != 1 || len(got.Scripts[0].Failures) != 0 {
		t.Errorf("the product's script on the toy: exit %d, %+v (%v)", code, got.Scripts, err)
	}

	// A machine's violation with -json: its file, and its failing script.
	breaker := brokenCopy(t, tmp, "breaker.yaml", filepath.Join("testdata", "breaker.yaml"), "to: open, do: [trip], set: {failures: 0}}", "to: open, do: [trip]}")
	dir2 := filepath.Join(tmp, "cex2")
	if err := os.MkdirAll(dir2, 0o755); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCheck(t, "-json", "-counterexamples", dir2, "-scripts", dir2, breaker)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	got.Counterexamples, got.Scripts = nil, nil
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	file = filepath.Join(dir2, "breaker-invariant-countsOnlyWhenClosed.txt")
	if len(got.Counterexamples) != 1 || got.Counterexamples[0].File != file {
		t.Errorf("counterexamples %+v, want %s", got.Counterexamples, file)
	}
	if len(got.Scripts) != 1 || got.Scripts[0].File != file || len(got.Scripts[0].Failures) != 1 {
		t.Errorf("scripts %+v, want %s failing once", got.Scripts, file)
	}
}
