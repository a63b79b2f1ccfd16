package gen_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/fsmkernel/fsmkernel/gen"
)

// Scenario files under testdata/scenarios are txtar archives. Every file under
// spec/ is an input; the rest is expected output:
//
//	errors          the diagnostics of an invalid spec, one per line
//	out/<file>.go   generated Go
//	out/<m>.dot     DOT diagram of machine m
//	out/<m>.mmd     Mermaid diagram of machine m
//	out/report.txt  the check report
//
// Run `go test ./gen -update` to rewrite the expected output from the current
// generator; review the diff before committing it.

var update = flag.Bool("update", false, "rewrite the expected output of scenario files")

func TestScenarios(t *testing.T) {
	paths, err := filepath.Glob("testdata/scenarios/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no scenarios found")
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := runScenario(t, ar)
			if *update {
				rewrite(t, path, ar, got)
				return
			}
			want := map[string]string{}
			for _, f := range ar.Files {
				if !strings.HasPrefix(f.Name, "spec/") {
					want[f.Name] = string(f.Data)
				}
			}
			for _, name := range sortedNames(got) {
				if w, ok := want[name]; !ok {
					t.Errorf("%s: unexpected output %s:\n%s", path, name, got[name])
				} else if w != got[name] {
					t.Errorf("%s: %s differs (run with -update to accept):\n%s", path, name, lineDiff(w, got[name]))
				}
			}
			for name := range want {
				if _, ok := got[name]; !ok {
					t.Errorf("%s: expected output %s was not produced", path, name)
				}
			}
		})
	}
}

func runScenario(t *testing.T, ar *txtar.Archive) map[string]string {
	var srcs []gen.Source
	for _, f := range ar.Files {
		if strings.HasPrefix(f.Name, "spec/") {
			srcs = append(srcs, gen.Source{Path: f.Name, Data: f.Data})
		}
	}
	if len(srcs) == 0 {
		t.Fatal("scenario has no spec/ files")
	}
	out := map[string]string{}
	pkg, err := gen.Load(srcs...)
	if err != nil {
		if _, ok := err.(gen.Diagnostics); !ok {
			t.Fatalf("Load returned %T, want gen.Diagnostics: %v", err, err)
		}
		out["errors"] = err.Error() + "\n"
		return out
	}
	files, err := gen.EmitGo(pkg, gen.GoOptions{Package: "example", Command: "fsmgen generate -pkg example"})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		out["out/"+name] = string(b)
	}
	for _, m := range pkg.Machines {
		out["out/"+m.Name+".dot"] = string(gen.EmitDOT(pkg, m))
		out["out/"+m.Name+".mmd"] = string(gen.EmitMermaid(pkg, m))
	}
	if len(pkg.Classifiers) > 0 {
		files, err := gen.EmitClassifiers(pkg, gen.ClassifyOptions{Package: "sockets", Machines: "example.com/statemachine", Command: "fsmgen classify -import example.com/statemachine"})
		if err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			out["out/"+name] = string(b)
		}
	}
	report, err := gen.Report(pkg)
	if err != nil {
		t.Fatal(err)
	}
	out["out/report.txt"] = report
	return out
}

func rewrite(t *testing.T, path string, ar *txtar.Archive, got map[string]string) {
	var files []txtar.File
	for _, f := range ar.Files {
		if strings.HasPrefix(f.Name, "spec/") {
			files = append(files, f)
		}
	}
	for _, name := range sortedNames(got) {
		files = append(files, txtar.File{Name: name, Data: []byte(got[name])})
	}
	ar.Files = files
	if err := os.WriteFile(path, txtar.Format(ar), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b bytes.Buffer
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			if shown++; shown == 5 {
				break
			}
		}
	}
	return b.String()
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i))
}

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}
