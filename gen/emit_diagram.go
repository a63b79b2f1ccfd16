package gen

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Diagram emitters. Transition rows become edges; ignore and reject rows change
// nothing and are left out, so the diagram shows the lifecycle; the tables remain
// the whole truth.
//
// By default an edge is labelled with the events that take it, each with the
// outcome values that do when not all of them do ("read(eof, failed)"); guards,
// actions and updates are shown only with LabelsFull, one line per row. Everything
// between the same two states is one edge. What a wildcard row does in many states
// is drawn once: when at least groupMin states go to the same target on the same
// input (the same event and outcome, or with LabelsFull the same row), the edge
// starts at a group node naming those states ("any non-terminal state but fresh")
// instead of at each of them; a self-loop in that many states is a loop on the
// group node.

// DiagramLabels says what the edge labels of a diagram show.
type DiagramLabels uint8

const (
	// LabelsEvents labels edges with their events and outcome values only.
	LabelsEvents DiagramLabels = iota
	// LabelsFull labels edges with every row in full, one line per row:
	// "events(outcomes) [guard] / actions, var = expr".
	LabelsFull
)

// ParseDiagramLabels reads the value of a -labels flag: "events" or "full".
func ParseDiagramLabels(s string) (DiagramLabels, error) {
	switch s {
	case "events":
		return LabelsEvents, nil
	case "full":
		return LabelsFull, nil
	}
	return 0, fmt.Errorf("labels must be events or full, not %q", s)
}

// DiagramOptions configures EmitDOT and EmitMermaid; the zero value labels edges
// by events.
type DiagramOptions struct {
	Labels DiagramLabels
}

// groupMin is the number of states from which one input must lead to one target
// for the edges to be drawn from a group node.
const groupMin = 3

// lineMax is the width, in characters, at which event labels and group names wrap.
const lineMax = 30

// A diagram node is a state (>= 0) or a group node (-1 - index into groups).
type diagramGraph struct {
	groups [][]int // sorted states of each group node
	edges  []diagramEdge
}

type diagramEdge struct {
	from, to int   // nodes
	items    []int // events mode: event*MaxOutcomes+outcome; full mode: row indices
}

func groupNode(g int) int { return -1 - g }

// diagramTriple is one (source state, target state, input) fact of the table.
type diagramTriple struct{ from, to, item int }

// diagramTriples lists what the table's transition rows do, without repetition,
// in row order.
func diagramTriples(pkg *Package, m *Machine, labels DiagramLabels) []diagramTriple {
	var out []diagramTriple
	seen := map[diagramTriple]bool{}
	add := func(t diagramTriple) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for ri, row := range m.Rows {
		if row.Kind != RowTransition {
			continue
		}
		for _, s := range row.From {
			to := row.To
			if to < 0 {
				to = s
			}
			if labels == LabelsFull {
				add(diagramTriple{s, to, ri})
				continue
			}
			for _, e := range row.On {
				outs := row.Outcomes
				if outs == nil {
					outs = make([]int, m.NumOutcomes(pkg, e))
					for i := range outs {
						outs[i] = i
					}
				}
				for _, o := range outs {
					add(diagramTriple{s, to, e*m.MaxOutcomes + o})
				}
			}
		}
	}
	return out
}

// buildDiagram merges the table's triples into edges and collapses inputs taken
// in groupMin or more states into edges from group nodes.
func buildDiagram(pkg *Package, m *Machine, labels DiagramLabels) *diagramGraph {
	triples := diagramTriples(pkg, m, labels)
	// The states each input leads from to each target; self-loops separately,
	// since their targets differ.
	type key struct {
		to, item int
		loop     bool
	}
	sources := map[key][]int{}
	for _, t := range triples {
		k := key{t.to, t.item, t.from == t.to}
		if k.loop {
			k.to = -1
		}
		sources[k] = append(sources[k], t.from)
	}
	g := &diagramGraph{}
	groupIndex := map[string]int{}
	edgeIndex := map[[2]int]int{}
	addItem := func(from, to, item int) {
		k := [2]int{from, to}
		i, ok := edgeIndex[k]
		if !ok {
			i = len(g.edges)
			edgeIndex[k] = i
			g.edges = append(g.edges, diagramEdge{from: from, to: to})
		}
		for _, x := range g.edges[i].items {
			if x == item {
				return
			}
		}
		g.edges[i].items = append(g.edges[i].items, item)
	}
	for _, t := range triples {
		k := key{t.to, t.item, t.from == t.to}
		if k.loop {
			k.to = -1
		}
		from := sources[k]
		if len(from) < groupMin {
			addItem(t.from, t.to, t.item)
			continue
		}
		states := append([]int(nil), from...)
		sort.Ints(states)
		name := fmt.Sprint(states)
		gi, ok := groupIndex[name]
		if !ok {
			gi = len(g.groups)
			groupIndex[name] = gi
			g.groups = append(g.groups, states)
		}
		to := t.to
		if k.loop {
			to = groupNode(gi)
		}
		addItem(groupNode(gi), to, t.item)
	}
	for i := range g.edges {
		if labels == LabelsEvents {
			sort.Ints(g.edges[i].items)
		}
	}
	return g
}

// edgeLines renders an edge's label as lines: wrapped events, or one row a line.
func edgeLines(pkg *Package, m *Machine, labels DiagramLabels, e *diagramEdge) []string {
	if labels == LabelsFull {
		lines := make([]string, len(e.items))
		for i, ri := range e.items {
			lines[i] = rowLabel(pkg, m, &m.Rows[ri])
		}
		return lines
	}
	var words []string
	for i := 0; i < len(e.items); {
		ev := e.items[i] / m.MaxOutcomes
		var outs []int
		for ; i < len(e.items) && e.items[i]/m.MaxOutcomes == ev; i++ {
			outs = append(outs, e.items[i]%m.MaxOutcomes)
		}
		name := m.Events[ev].Name
		if m.Events[ev].Outcome < 0 || len(outs) == m.NumOutcomes(pkg, ev) {
			words = append(words, name)
			continue
		}
		oe := pkg.Outcomes[m.Events[ev].Outcome]
		for j, o := range outs {
			w := oe.Values[o].Name
			if j == 0 {
				w = name + "(" + w
			}
			if j == len(outs)-1 {
				w += ")"
			}
			words = append(words, w)
		}
	}
	return wrapWords(words)
}

// wrapWords joins words with ", " into lines of at most lineMax characters where
// the words allow; a line that breaks ends with the comma.
func wrapWords(words []string) []string {
	var lines []string
	cur := ""
	for i, w := range words {
		if i+1 < len(words) {
			w += ","
		}
		if cur != "" && len(cur)+1+len(w) > lineMax {
			lines = append(lines, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// groupName describes a group node's states: "any non-terminal state but fresh,
// closing", "any state", or "any of running, draining, stopping", wrapped.
func groupName(m *Machine, states []int) []string {
	in := make([]bool, len(m.States))
	for _, s := range states {
		in[s] = true
	}
	terminalsOut, terminals := true, 0
	for i, s := range m.States {
		if s.Terminal {
			terminals++
			terminalsOut = terminalsOut && !in[i]
		}
	}
	terminalsOut = terminalsOut && terminals > 0
	var excluded []string
	for i, s := range m.States {
		if !in[i] && !(terminalsOut && s.Terminal) {
			excluded = append(excluded, s.Name)
		}
	}
	prefix := "any state"
	if terminalsOut {
		prefix = "any non-terminal state"
	}
	var names []string
	switch {
	case len(excluded) == 0:
		return []string{prefix}
	case 2*len(excluded) <= len(states):
		prefix += " but"
		names = excluded
	default:
		prefix = "any of"
		for _, s := range states {
			names = append(names, m.States[s].Name)
		}
	}
	lines := wrapWords(names)
	if len(prefix)+1+len(lines[0]) <= lineMax {
		lines[0] = prefix + " " + lines[0]
		return lines
	}
	return append([]string{prefix}, lines...)
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

// EmitDOT renders m as a Graphviz digraph with edges labelled by events.
func EmitDOT(pkg *Package, m *Machine) []byte { return DiagramOptions{}.DOT(pkg, m) }

// EmitMermaid renders m as a Mermaid state diagram with edges labelled by events.
func EmitMermaid(pkg *Package, m *Machine) []byte { return DiagramOptions{}.Mermaid(pkg, m) }

// DOT renders m as a Graphviz digraph:
//
//	// The lifecycle of one stream connection, from connect to close.
//	digraph conn {
//		rankdir=LR;
//		node [shape=box, style=rounded];
//		__start [shape=point, label=""];
//		__start -> connecting;
//		connecting;
//		closed [shape=doublecircle, style=solid];
//		__group0 [shape=note, style=dashed, label="any non-terminal state\l"];
//		connecting -> active [label="connected\l"];
//		__group0 -> closed [label="close, loopFailed\l"];
//	}
//
// A name DOT reads as a keyword (node, graph, ...) is quoted.
func (o DiagramOptions) DOT(pkg *Package, m *Machine) []byte {
	g := buildDiagram(pkg, m, o.Labels)
	id := func(n int) string {
		if n < 0 {
			return "__group" + strconv.Itoa(-1-n)
		}
		return dotID(m.States[n].Name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "// %s\ndigraph %s {\n", firstLine(m.Description), dotID(m.Name))
	b.WriteString("\trankdir=LR;\n\tnode [shape=box, style=rounded];\n")
	b.WriteString("\t__start [shape=point, label=\"\"];\n")
	fmt.Fprintf(&b, "\t__start -> %s;\n", id(m.Initial))
	for i, s := range m.States {
		if s.Terminal {
			fmt.Fprintf(&b, "\t%s [shape=doublecircle, style=solid];\n", id(i))
		} else {
			fmt.Fprintf(&b, "\t%s;\n", id(i))
		}
	}
	for i, states := range g.groups {
		fmt.Fprintf(&b, "\t%s [shape=note, style=dashed, label=%s];\n", id(groupNode(i)), dotLines(groupName(m, states)))
	}
	for i := range g.edges {
		e := &g.edges[i]
		fmt.Fprintf(&b, "\t%s -> %s [label=%s];\n", id(e.from), id(e.to), dotLines(edgeLines(pkg, m, o.Labels, e)))
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// dotID spells a name as a DOT id: bare, as names are letters and digits, but
// quoted when DOT would read it as a keyword (which it does in any case).
func dotID(name string) string {
	switch strings.ToLower(name) {
	case "node", "edge", "graph", "digraph", "subgraph", "strict":
		return `"` + name + `"`
	}
	return name
}

// dotLines renders lines as one left-justified DOT label.
func dotLines(lines []string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	var b strings.Builder
	b.WriteByte('"')
	for _, l := range lines {
		b.WriteString(r.Replace(l))
		b.WriteString(`\l`)
	}
	b.WriteByte('"')
	return b.String()
}

// Mermaid renders m as a Mermaid state diagram:
//
//	stateDiagram-v2
//		direction LR
//		classDef fsmgenGroup fill:none,stroke-dasharray:4 4
//		[*] --> connecting
//		connecting
//		closed
//		state "any non-terminal state" as __group0
//		class __group0 fsmgenGroup
//		connecting --> active: connected
//		__group0 --> closed: close, loopFailed
//		closed --> [*]
//
// Labels need no escaping: names are identifiers and guards use only operators,
// none of which Mermaid reads as syntax in a transition's text (which ends at a
// newline, ";" or "::"). A state whose name Mermaid would read as a keyword (note,
// or one starting with click or default) is declared under another id.
func (o DiagramOptions) Mermaid(pkg *Package, m *Machine) []byte {
	g := buildDiagram(pkg, m, o.Labels)
	id := func(n int) string {
		if n < 0 {
			return "__group" + strconv.Itoa(-1-n)
		}
		if mermaidKeyword(m.States[n].Name) {
			return "__state" + strconv.Itoa(n)
		}
		return m.States[n].Name
	}
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n\tdirection LR\n")
	if len(g.groups) > 0 {
		b.WriteString("\tclassDef fsmgenGroup fill:none,stroke-dasharray:4 4\n")
	}
	fmt.Fprintf(&b, "\t[*] --> %s\n", id(m.Initial))
	for i, s := range m.States {
		if mermaidKeyword(s.Name) {
			fmt.Fprintf(&b, "\tstate \"%s\" as %s\n", s.Name, id(i))
		} else {
			fmt.Fprintf(&b, "\t%s\n", id(i))
		}
	}
	for i, states := range g.groups {
		fmt.Fprintf(&b, "\tstate \"%s\" as %s\n", mermaidText(strings.Join(groupName(m, states), "<br/>")), id(groupNode(i)))
		fmt.Fprintf(&b, "\tclass %s fsmgenGroup\n", id(groupNode(i)))
	}
	for i := range g.edges {
		e := &g.edges[i]
		fmt.Fprintf(&b, "\t%s --> %s: %s\n", id(e.from), id(e.to), mermaidText(strings.Join(edgeLines(pkg, m, o.Labels, e), "<br/>")))
	}
	for i, s := range m.States {
		if s.Terminal {
			fmt.Fprintf(&b, "\t%s --> [*]\n", id(i))
		}
	}
	return []byte(b.String())
}

// mermaidKeyword reports whether Mermaid's state diagram lexer would read a state
// name, at the start of a line, as something other than a state id. The lexer is
// case-insensitive and takes the first rule that matches, so a name that merely
// starts with click, href or default is read as that keyword.
func mermaidKeyword(name string) bool {
	n := strings.ToLower(name)
	for _, p := range []string{"click", "href", "default", "statediagram"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	switch n {
	case "note", "class", "classdef", "style", "state", "scale":
		return true
	}
	return false
}

// mermaidText keeps a label within what Mermaid reads as one transition's text.
// Names and operators never contain ";", ":", "#" or a newline; a "<" before a
// letter would open an HTML tag, so it gets a space (operators are spaced anyway).
func mermaidText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case strings.HasPrefix(s[i:], "<br/>"):
			b.WriteString("<br/>")
			i += len("<br/>") - 1
			continue
		case c == '\n' || c == ';':
			b.WriteByte(',')
			continue
		case c == ':':
			b.WriteByte('.')
			continue
		case c == '<' && i+1 < len(s) && isLetter(s[i+1]):
			b.WriteString("< ")
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
