package gen

import (
	"os"
	"testing"
)

// The diagram draws exactly what the transition rows do: expanding its group
// nodes gives back every (state, target, input) of the table and nothing else,
// and no input to one target is left drawn from groupMin or more single states.
func TestDiagramKeepsEveryTransition(t *testing.T) {
	var srcs []Source
	for _, p := range []string{"../spec/outcomes.yaml", "../spec/errno.yaml", "../spec/eventloop.yaml", "../spec/channel.yaml", "../spec/listener.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, Source{Path: p, Data: b})
	}
	pkg, err := Load(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range pkg.Machines {
		for _, labels := range []DiagramLabels{LabelsEvents, LabelsFull} {
			want := map[diagramTriple]bool{}
			for _, tr := range diagramTriples(pkg, m, labels) {
				want[tr] = true
			}
			g := buildDiagram(pkg, m, labels)
			got := map[diagramTriple]bool{}
			type key struct{ to, item int }
			fromStates := map[key]int{}
			loops := map[int]int{}
			for _, e := range g.edges {
				sources := []int{e.from}
				if e.from < 0 {
					sources = g.groups[-1-e.from]
					if len(sources) < groupMin {
						t.Errorf("%s: group %v has fewer than %d states", m.Name, sources, groupMin)
					}
				}
				for _, item := range e.items {
					if e.from >= 0 {
						if e.from == e.to {
							loops[item]++
						} else {
							fromStates[key{e.to, item}]++
						}
					}
					for _, s := range sources {
						to := e.to
						if to < 0 {
							if to != e.from {
								t.Fatalf("%s: edge from %d into group %d", m.Name, e.from, to)
							}
							to = s
						}
						tr := diagramTriple{s, to, item}
						if got[tr] {
							t.Errorf("%s: %v drawn twice", m.Name, tr)
						}
						got[tr] = true
					}
				}
			}
			for tr := range want {
				if !got[tr] {
					t.Errorf("%s (labels %d): %v not drawn", m.Name, labels, tr)
				}
			}
			for tr := range got {
				if !want[tr] {
					t.Errorf("%s (labels %d): %v drawn but not in the table", m.Name, labels, tr)
				}
			}
			for k, n := range fromStates {
				if n >= groupMin {
					t.Errorf("%s: input %d to %s drawn from %d single states", m.Name, k.item, m.States[k.to].Name, n)
				}
			}
			for item, n := range loops {
				if n >= groupMin {
					t.Errorf("%s: input %d drawn as a self-loop in %d single states", m.Name, item, n)
				}
			}
			if len(g.groups) == 0 {
				t.Errorf("%s (labels %d): nothing collapsed", m.Name, labels)
			}
		}
	}
}
