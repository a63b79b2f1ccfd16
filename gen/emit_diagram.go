package gen

import (
	"fmt"
	"strings"
)

// Diagram emitters. Each transition row becomes one labelled edge per source state;
// rows between the same two states are merged into one edge with a line per row.
// Ignore and reject rows change nothing and are left out, so the diagram shows the
// lifecycle; the tables remain the whole truth.

type diagramEdge struct {
	from, to int
	labels   []string
}

func diagramEdges(pkg *Package, m *Machine) []diagramEdge {
	var edges []diagramEdge
	index := map[[2]int]int{}
	for _, row := range m.Rows {
		if row.Kind != RowTransition {
			continue
		}
		label := rowLabel(pkg, m, &row)
		for _, s := range row.From {
			to := row.To
			if to < 0 {
				to = s
			}
			k := [2]int{s, to}
			i, ok := index[k]
			if !ok {
				i = len(edges)
				index[k] = i
				edges = append(edges, diagramEdge{from: s, to: to})
			}
			edges[i].labels = append(edges[i].labels, label)
		}
	}
	return edges
}

// rowLabel renders "readable(data, eof) [reads < 3] / deliverRead, closeFD".
func rowLabel(pkg *Package, m *Machine, row *Row) string {
	var evs []string
	for _, e := range row.On {
		evs = append(evs, m.Events[e].Name)
	}
	s := strings.Join(evs, ", ")
	if row.Outcomes != nil {
		oe := pkg.Outcomes[m.Events[row.On[0]].Outcome]
		var outs []string
		for _, o := range row.Outcomes {
			outs = append(outs, oe.Values[o].Name)
		}
		s += "(" + strings.Join(outs, ", ") + ")"
	}
	if row.Guard != nil {
		s += " [" + row.Guard.Format(m) + "]"
	}
	var acts []string
	for _, a := range row.Do {
		acts = append(acts, m.Actions[a].Name)
	}
	for _, u := range row.Set {
		acts = append(acts, m.Vars[u.Var].Name+" = "+u.Value.Format(m))
	}
	if len(acts) > 0 {
		s += " / " + strings.Join(acts, ", ")
	}
	return s
}

// EmitDOT renders m as a Graphviz digraph:
//
//	digraph conn {
//		__start [shape=point];
//		__start -> connecting;
//		closed [shape=doublecircle];
//		connecting -> active [label="connected"];
//	}
func EmitDOT(pkg *Package, m *Machine) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "// %s\ndigraph %s {\n", firstLine(m.Description), m.Name)
	b.WriteString("\trankdir=LR;\n\tnode [shape=box, style=rounded];\n")
	b.WriteString("\t__start [shape=point, label=\"\"];\n")
	fmt.Fprintf(&b, "\t__start -> %s;\n", m.States[m.Initial].Name)
	for _, s := range m.States {
		if s.Terminal {
			fmt.Fprintf(&b, "\t%s [shape=doublecircle, style=solid];\n", s.Name)
		}
	}
	for _, e := range diagramEdges(pkg, m) {
		fmt.Fprintf(&b, "\t%s -> %s [label=%s];\n", m.States[e.from].Name, m.States[e.to].Name, dotQuote(strings.Join(e.labels, "\n")))
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\l`)
	return `"` + r.Replace(s) + `\l"`
}

// EmitMermaid renders m as a Mermaid state diagram:
//
//	stateDiagram-v2
//		[*] --> connecting
//		connecting --> active: connected
//		closed --> [*]
func EmitMermaid(pkg *Package, m *Machine) []byte {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	fmt.Fprintf(&b, "\t[*] --> %s\n", m.States[m.Initial].Name)
	for _, e := range diagramEdges(pkg, m) {
		fmt.Fprintf(&b, "\t%s --> %s: %s\n", m.States[e.from].Name, m.States[e.to].Name, mermaidText(strings.Join(e.labels, "<br/>")))
	}
	for _, s := range m.States {
		if s.Terminal {
			fmt.Fprintf(&b, "\t%s --> [*]\n", s.Name)
		}
	}
	return []byte(b.String())
}

// mermaidText escapes the characters Mermaid would read as syntax in a label.
func mermaidText(s string) string {
	r := strings.NewReplacer("<br/>", "<br/>", "&", "#38;", "<", "#60;", ">", "#62;", ":", "#58;", ";", "#59;", "\"", "#34;", "#", "#35;")
	return r.Replace(s)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
