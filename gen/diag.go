package gen

import (
	"fmt"
	"sort"
	"strings"
)

// Diagnostic is one problem in a spec, at a position.
type Diagnostic struct {
	Pos Pos
	Msg string
}

func (d Diagnostic) String() string {
	if d.Pos.File == "" {
		return d.Msg
	}
	if d.Pos.Line == 0 {
		return fmt.Sprintf("%s: %s", d.Pos.File, d.Msg)
	}
	if d.Pos.Col == 0 {
		return fmt.Sprintf("%s:%d: %s", d.Pos.File, d.Pos.Line, d.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", d.Pos.File, d.Pos.Line, d.Pos.Col, d.Msg)
}

// Diagnostics is every problem found in one run, sorted by position. It is the error
// returned by Load when a spec is invalid; Error prints one problem per line.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

type diags struct{ list Diagnostics }

func (d *diags) add(p Pos, format string, args ...any) {
	d.list = append(d.list, Diagnostic{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// err returns the sorted, de-duplicated diagnostics, or nil when there are none.
func (d *diags) err() error {
	if len(d.list) == 0 {
		return nil
	}
	sort.SliceStable(d.list, func(i, j int) bool {
		a, b := d.list[i].Pos, d.list[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	out := d.list[:0]
	for i, x := range d.list {
		if i > 0 && x == d.list[i-1] {
			continue
		}
		out = append(out, x)
	}
	d.list = out
	return d.list
}
