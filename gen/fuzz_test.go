package gen_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/fsmkernel/fsmkernel/gen"
)

// FuzzLoad feeds arbitrary bytes to the parser and validator. Nothing may panic;
// an invalid spec must come back as Diagnostics with a position; a valid one must
// emit Go, diagrams and a report. The seed corpus is every spec in testdata plus
// testdata/fuzz/FuzzLoad, and runs as a normal test.
func FuzzLoad(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	scenarios, _ := filepath.Glob("testdata/scenarios/*.txtar")
	for _, p := range scenarios {
		ar, err := txtar.ParseFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			if strings.HasPrefix(file.Name, "spec/") {
				f.Add(file.Data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkg, err := gen.Load(gen.Source{Path: "fuzz.yaml", Data: data})
		if err != nil {
			var ds gen.Diagnostics
			if !errors.As(err, &ds) || len(ds) == 0 {
				t.Fatalf("Load error is %T %v, want non-empty Diagnostics", err, err)
			}
			for _, d := range ds {
				if d.Pos.File != "fuzz.yaml" || d.Msg == "" {
					t.Fatalf("diagnostic without file or message: %+v", d)
				}
			}
			return
		}
		if _, err := gen.EmitGo(pkg, gen.GoOptions{Package: "p", Command: "fsmgen"}); err != nil {
			// Names that collide as Go identifiers are reported at emission.
			if !strings.Contains(err.Error(), "both become Go identifier") {
				t.Fatalf("EmitGo: %v", err)
			}
		}
		for _, m := range pkg.Machines {
			gen.EmitDOT(pkg, m)
			gen.EmitMermaid(pkg, m)
		}
		if _, err := gen.Report(pkg); err != nil {
			t.Fatalf("Report: %v", err)
		}
	})
}
