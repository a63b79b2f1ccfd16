package gen_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/gen"
)

// kernelSpecs are the kernel's tables, as statemachine/doc.go generates them.
var kernelSpecs = []string{"../spec/outcomes.yaml", "../spec/errno.yaml", "../spec/eventloop.yaml", "../spec/channel.yaml", "../spec/listener.yaml"}

func loadFiles(t *testing.T, paths ...string) *gen.Package {
	t.Helper()
	var srcs []gen.Source
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, gen.Source{Path: p, Data: b})
	}
	pkg, err := gen.Load(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

func loadText(t *testing.T, spec string) *gen.Package {
	t.Helper()
	pkg, err := gen.Load(gen.Source{Path: "test.yaml", Data: []byte(spec)})
	if err != nil {
		t.Fatal(err)
	}
	return pkg
}

// diagramCase is one machine drawn one way.
type diagramCase struct {
	name   string
	pkg    *gen.Package
	m      *gen.Machine
	labels gen.DiagramLabels
}

func diagramCases(t *testing.T) []diagramCase {
	var cases []diagramCase
	for _, pkg := range []*gen.Package{loadFiles(t, kernelSpecs...), loadFiles(t, "testdata/conn.yaml")} {
		for _, m := range pkg.Machines {
			for _, l := range []gen.DiagramLabels{gen.LabelsEvents, gen.LabelsFull} {
				name := m.Name + "/events"
				if l == gen.LabelsFull {
					name = m.Name + "/full"
				}
				cases = append(cases, diagramCase{name, pkg, m, l})
			}
		}
	}
	return cases
}

// mermaidEdge is a transition line of a Mermaid state diagram: from --> to: label.
var mermaidEdge = regexp.MustCompile(`(?m)^\t(\S+) --> (\S+): (.*)$`)

// dotEdge is an edge line of EmitDOT's output.
var dotEdge = regexp.MustCompile(`(?m)^\t(\S+) -> (\S+) \[label="(.*)"\];$`)

func TestMermaidHasNoEntityCodes(t *testing.T) {
	entity := regexp.MustCompile(`&#?\w+;|#\d+;`)
	for _, c := range diagramCases(t) {
		out := string(gen.DiagramOptions{Labels: c.labels}.Mermaid(c.pkg, c.m))
		if loc := entity.FindStringIndex(out); loc != nil {
			t.Errorf("%s: Mermaid output has an entity code %q:\n%s", c.name, out[loc[0]:loc[1]], out)
		}
		for _, e := range mermaidEdge.FindAllStringSubmatch(out, -1) {
			// Mermaid ends a transition's text at ";" or "::"; "<" before a letter
			// opens an HTML tag (other than the line breaks written on purpose).
			text := strings.ReplaceAll(e[3], "<br/>", "\n")
			if strings.Contains(text, ";") || strings.Contains(text, "::") || regexp.MustCompile(`<[A-Za-z/]`).MatchString(text) {
				t.Errorf("%s: label Mermaid would misread: %q", c.name, e[3])
			}
		}
	}
	// The full labels of the kernel keep their operators as written.
	pkg := loadFiles(t, kernelSpecs...)
	out := string(gen.DiagramOptions{Labels: gen.LabelsFull}.Mermaid(pkg, machine(t, pkg, "channel")))
	for _, want := range []string{"&&", "!delivered", "output != idle", "[ebadfPolicy == contain && delivered]"} {
		if !strings.Contains(out, want) {
			t.Errorf("full Mermaid labels of channel lack %q", want)
		}
	}
}

func machine(t *testing.T, pkg *gen.Package, name string) *gen.Machine {
	t.Helper()
	for _, m := range pkg.Machines {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no machine %s", name)
	return nil
}

// Event labels are short lines of event names and outcome values; full labels
// carry the guards and actions.
func TestDiagramLabels(t *testing.T) {
	const maxLine = 40
	for _, c := range diagramCases(t) {
		dot := string(gen.DiagramOptions{Labels: c.labels}.DOT(c.pkg, c.m))
		mmd := string(gen.DiagramOptions{Labels: c.labels}.Mermaid(c.pkg, c.m))
		var lines []string
		for _, e := range dotEdge.FindAllStringSubmatch(dot, -1) {
			lines = append(lines, strings.Split(strings.TrimSuffix(e[3], `\l`), `\l`)...)
		}
		var mlines []string
		for _, e := range mermaidEdge.FindAllStringSubmatch(mmd, -1) {
			mlines = append(mlines, strings.Split(e[3], "<br/>")...)
		}
		if len(lines) == 0 || len(lines) != len(mlines) {
			t.Fatalf("%s: %d DOT label lines, %d Mermaid label lines", c.name, len(lines), len(mlines))
		}
		guarded := false
		for i, l := range lines {
			if l != mlines[i] {
				t.Errorf("%s: DOT label line %q, Mermaid %q", c.name, l, mlines[i])
			}
			if strings.ContainsAny(l, "[]/=") {
				guarded = true
			}
			if c.labels == gen.LabelsEvents {
				if len(l) > maxLine {
					t.Errorf("%s: label line longer than %d: %q", c.name, maxLine, l)
				}
				if !regexp.MustCompile(`^[A-Za-z0-9(), ]+$`).MatchString(l) {
					t.Errorf("%s: event label with more than events and outcomes: %q", c.name, l)
				}
			}
		}
		if c.labels == gen.LabelsFull && !guarded {
			t.Errorf("%s: full labels show no guard or action", c.name)
		}
	}
}

// Every state is drawn, once, whether or not an edge of its own touches it.
func TestDiagramHasAllStates(t *testing.T) {
	for _, c := range diagramCases(t) {
		dot := string(gen.DiagramOptions{Labels: c.labels}.DOT(c.pkg, c.m))
		mmd := string(gen.DiagramOptions{Labels: c.labels}.Mermaid(c.pkg, c.m))
		for _, s := range c.m.States {
			decl := regexp.MustCompile(`(?m)^\t` + s.Name + `( \[.*\])?;$`)
			if n := len(decl.FindAllString(dot, -1)); n != 1 {
				t.Errorf("%s: DOT declares state %s %d times", c.name, s.Name, n)
			}
			if n := strings.Count(mmd, "\n\t"+s.Name+"\n"); n != 1 {
				t.Errorf("%s: Mermaid declares state %s %d times", c.name, s.Name, n)
			}
		}
	}
}

const wildcardSpec = `
machine:
  name: w
  description: Five working states, one way out from each.
  states:
    a: {description: A., initial: true}
    b: {description: B.}
    c: {description: C.}
    d: {description: D.}
    e: {description: E.}
    gone: {description: Gone., terminal: true}
  events:
    next: {description: Next.}
    tick: {description: Tick.}
    kill: {description: Kill., abnormal: true}
  actions:
    log: {description: Log.}
    cleanup: {description: Clean up.}
  transitions:
    - {from: a, on: next, to: b}
    - {from: b, on: next, to: c}
    - {from: c, on: next, to: d}
    - {from: d, on: next, to: e}
    - {from: e, on: next, to: a}
    - {from: "*", except: [gone, e], on: tick, do: [log]}
    - {from: e, on: tick, ignore: true}
    - {from: [a, b], on: kill, to: gone, do: [cleanup]}
    - {from: [c, d, e], on: kill, to: gone}
    - {from: gone, on: "*", ignore: true}
`

// A wildcard row is one edge from a group node, not one edge per state; a
// wildcard self-loop is a loop on the group node.
func TestDiagramCollapsesWildcards(t *testing.T) {
	pkg := loadText(t, wildcardSpec)
	m := pkg.Machines[0]
	for _, labels := range []gen.DiagramLabels{gen.LabelsEvents, gen.LabelsFull} {
		dot := string(gen.DiagramOptions{Labels: labels}.DOT(pkg, m))
		edges := dotEdge.FindAllStringSubmatch(dot, -1)
		into := map[string][]string{}
		for _, e := range edges {
			into[e[2]] = append(into[e[2]], e[1])
		}
		if labels == gen.LabelsEvents {
			// Both kill rows: one edge, from the group of all five.
			if got := into["gone"]; len(got) != 1 || !strings.HasPrefix(got[0], "__group") {
				t.Errorf("events: edges into gone from %v, want one from a group node:\n%s", got, dot)
			} else if !strings.Contains(dot, "\t"+got[0]+` [shape=note, style=dashed, label="any non-terminal state\l"];`) {
				t.Errorf("events: group %s is not named any non-terminal state:\n%s", got[0], dot)
			}
		} else {
			// Two rows with different actions: two edges, from groups of 2 and 3
			// states; only the group of three is collapsed.
			if got := into["gone"]; len(got) != 3 {
				t.Errorf("full: edges into gone from %v, want a, b and a group:\n%s", got, dot)
			}
			if !strings.Contains(dot, `label="any of c, d, e\l"`) {
				t.Errorf("full: no group node for c, d, e:\n%s", dot)
			}
		}
		loops := 0
		for _, e := range edges {
			if e[1] == e[2] {
				loops++
				if !strings.HasPrefix(e[1], "__group") || !strings.HasPrefix(e[3], "tick") {
					t.Errorf("%v: self-loop %v, want tick on the group node", labels, e[1:])
				}
			}
		}
		if loops != 1 {
			t.Errorf("%v: %d self-loops, want 1:\n%s", labels, loops, dot)
		}
		if !strings.Contains(dot, `label="any non-terminal state but e\l"`) {
			t.Errorf("%v: no group node for the tick loop's states a, b, c, d:\n%s", labels, dot)
		}
		// The next cycle has one source per edge and stays as it is.
		if n := strings.Count(dot, `[label="next`); n != 5 {
			t.Errorf("%v: %d next edges, want 5", labels, n)
		}
	}
}

// Names that are keywords of DOT or Mermaid are still states.
func TestDiagramKeywordNames(t *testing.T) {
	pkg := loadText(t, `
machine:
  name: graph
  description: States named like keywords.
  states:
    node: {description: Node., initial: true}
    note: {description: Note.}
    clickCount: {description: Click count.}
    edge: {description: Edge., terminal: true}
  events:
    go: {description: Go.}
  transitions:
    - {from: node, on: go, to: note}
    - {from: note, on: go, to: clickCount}
    - {from: clickCount, on: go, to: edge}
    - {from: edge, on: go, ignore: true}
`)
	m := pkg.Machines[0]
	dot := string(gen.EmitDOT(pkg, m))
	for _, want := range []string{`digraph "graph" {`, `"node" -> note`, "clickCount -> \"edge\""} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOT lacks %s:\n%s", want, dot)
		}
	}
	mmd := string(gen.EmitMermaid(pkg, m))
	for _, want := range []string{"\tstate \"note\" as __state1\n", "\tstate \"clickCount\" as __state2\n", "\tnode --> __state1: go\n", "\t__state2 --> edge: go\n"} {
		if !strings.Contains(mmd, want) {
			t.Errorf("Mermaid lacks %q:\n%s", want, mmd)
		}
	}
	t.Run("dot", func(t *testing.T) { renderDOT(t, "keywords", gen.EmitDOT(pkg, m)) })
	t.Run("mermaid", func(t *testing.T) { renderMermaid(t, "keywords", gen.EmitMermaid(pkg, m)) })
}

// TestDiagramsRender draws the kernel's machines and the worked example with
// Graphviz and mermaid-cli, when they are installed (.ci/run installs them).
func TestDiagramsRender(t *testing.T) {
	for _, c := range diagramCases(t) {
		opts := gen.DiagramOptions{Labels: c.labels}
		t.Run(c.name+"/dot", func(t *testing.T) {
			svg := renderDOT(t, c.name, opts.DOT(c.pkg, c.m))
			if w := svgWidth(t, svg); c.labels == gen.LabelsEvents && w > 3000 {
				t.Errorf("%s is %.0fpt wide with event labels, want at most 3000", c.name, w)
			}
		})
		if c.labels == gen.LabelsEvents {
			t.Run(c.name+"/mermaid", func(t *testing.T) {
				renderMermaid(t, c.name, opts.Mermaid(c.pkg, c.m))
			})
		}
	}
}

// renderDOT runs dot -Tsvg, failing on an error or a warning.
func renderDOT(t *testing.T, name string, src []byte) []byte {
	t.Helper()
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("dot not installed (Debian package graphviz): DOT output not rendered")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(src), &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("%s: dot: %v\n%s\n%s", name, err, stderr.String(), src)
	}
	return stdout.Bytes()
}

func svgWidth(t *testing.T, svg []byte) float64 {
	t.Helper()
	m := regexp.MustCompile(`<svg width="([0-9.]+)pt"`).FindSubmatch(svg)
	if m == nil {
		t.Fatalf("no width in the SVG:\n%.500s", svg)
	}
	w, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// renderMermaid runs mermaid-cli. It uses the browser PUPPETEER_EXECUTABLE_PATH
// names, else a chromium on PATH, else the one puppeteer downloaded.
func renderMermaid(t *testing.T, name string, src []byte) {
	t.Helper()
	mmdc, err := exec.LookPath("mmdc")
	if err != nil {
		t.Skip("mmdc not installed (npm package @mermaid-js/mermaid-cli): Mermaid output not rendered")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.mmd"), filepath.Join(dir, "out.svg")
	if err := os.WriteFile(in, src, 0o644); err != nil {
		t.Fatal(err)
	}
	browser := os.Getenv("PUPPETEER_EXECUTABLE_PATH")
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if browser == "" {
			browser, _ = exec.LookPath(b)
		}
	}
	config := `{"args": ["--no-sandbox"]}`
	if browser != "" {
		config = `{"executablePath": ` + strconv.Quote(browser) + `, "args": ["--no-sandbox"]}`
	}
	cfg := filepath.Join(dir, "puppeteer.json")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, mmdc, "-q", "-p", cfg, "-i", in, "-o", out).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: mmdc: %v\n%s\n%s", name, err, b, src)
	}
	svg, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// mmdc writes a diagram that says "Syntax error" rather than failing on some
	// inputs.
	if bytes.Contains(svg, []byte("Syntax error")) || !bytes.Contains(svg, []byte(`aria-roledescription="stateDiagram"`)) {
		t.Fatalf("%s: mmdc did not draw a state diagram:\n%.1000s", name, svg)
	}
}
