package gen

import (
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// The parser turns YAML nodes into raw declarations that keep every position. It
// is strict: unknown keys, duplicate keys and values of the wrong shape are errors,
// all of them reported in one pass. Name resolution and typing happen in resolve.go.

type rawFile struct {
	path        string
	outcomes    []*rawEnum
	machine     *rawMachine
	classifiers []*rawClassifier
	product     *rawProduct
}

type rawClassifier struct {
	rawName
	desc                  string
	outcome               rawName
	success, zero, deflt  *rawName
	errors, linux, darwin []rawErrno
}

type rawProduct struct {
	rawName
	desc        string
	components  []rawComponent
	sync        []rawSync
	requests    []rawRequest
	outlives    *rawOutlives
	obligations []*rawObligation
}

type rawComponent struct {
	rawName
	machine  rawName
	count    int
	internal rawList
	options  []rawSet
}

type rawRequest struct {
	pos                       Pos
	from, to, event, outcome  rawName
	onReject, onRejectOutcome rawName
	states                    rawList
}

type rawSync struct {
	pos                              Pos
	from, action, to, event, outcome rawName
	onReject, onRejectOutcome        rawName
}

type rawOutlives struct {
	component rawName
	others    rawList
}

type rawErrno struct {
	rawName // the errno
	outcome rawName
	why     string
}

type rawName struct {
	name string
	pos  Pos
}

type rawEnum struct {
	rawName
	desc   string
	values []rawDesc
}

type rawDesc struct {
	rawName
	desc string
}

type rawMachine struct {
	rawName
	desc        string
	states      []*rawState
	events      []*rawEvent
	vars        []*rawVar
	actions     []*rawAction
	transitions []*rawRow
	invariants  []*rawInvariant
	obligations []*rawObligation
}

type rawState struct {
	rawName
	desc              string
	initial, terminal bool
}

type rawEvent struct {
	rawName
	desc     string
	outcome  *rawName
	abnormal bool
}

type rawVar struct {
	rawName
	desc     string
	typ      rawName
	values   []rawDesc
	min, max *int
	initial  *yaml.Node
	option   bool
}

type rawAction struct {
	rawName
	desc     string
	max      int
	after    *rawName
	notAfter rawList
	with     rawList
	effects  []rawSet
}

// rawList is a field that holds one name, a list of names, or "*".
type rawList struct {
	set   bool
	any   bool // "*"
	names []rawName
	pos   Pos
}

type rawRow struct {
	pos        Pos
	from       rawList
	except     rawList
	on         rawList   // the plain events of on, which answer outcome
	pairs      []rawPair // the event(outcome, ...) items of on
	exceptOn   rawList
	outcome    rawList
	when       *yaml.Node
	to         *rawName
	do         []rawName
	groups     []rawGroup // conditional action groups in do, expanded by expandRow
	set        []rawSet
	ignore     bool
	reject     bool
	reason     string
	transition bool // has to, do or set
}

// rawGroup is a conditional action group, an item {when: EXPR, do: [...]} of a
// row's do list: its actions are performed at index at (the number of plain
// actions before it) exactly when EXPR holds and, if it has an on list, the
// row answers one of the events (or event(outcome) pairs) it names.
type rawGroup struct {
	pos   Pos
	at    int
	when  *yaml.Node
	on    rawList   // plain events: every outcome of them the row answers
	pairs []rawPair // event(outcome, ...) items
	do    []rawName
	set   []rawSet // assignments made when EXPR holds, beside the row's own
}

// rawPair is an item event(outcome, ...) of an on list: the event with the
// outcomes it names.
type rawPair struct {
	rawName  // the event
	outcomes []rawName
	text     string // as written, for diagnostics
	bad      bool   // malformed, and reported
}

type rawSet struct {
	rawName
	value *yaml.Node
}

type rawInvariant struct {
	rawName
	desc string
	expr *yaml.Node
}

// rawObligation is a response property as written: after, then, before.
type rawObligation struct {
	rawName
	desc                string
	after, then, before []rawTerm
	hasBefore           bool
}

// rawTerm is one item of an obligation's list: a name, event(outcome, ...),
// terminal, or an expression; node keeps its position and quoting.
type rawTerm struct {
	text string
	node *yaml.Node
	pos  Pos
}

type parser struct {
	file string
	d    *diags
}

func (p *parser) pos(n *yaml.Node) Pos { return Pos{File: p.file, Line: n.Line, Col: n.Column} }

// parseFile parses one spec file's bytes.
func parseFile(path string, src []byte, d *diags) *rawFile {
	p := &parser{file: path, d: d}
	f := &rawFile{path: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		d.add(Pos{File: path, Line: yamlErrLine(err)}, "%s", yamlErrMsg(err))
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		d.add(Pos{File: path, Line: 1, Col: 1}, "empty spec: want a mapping with \"outcomes\" and/or \"machine\"")
		return nil
	}
	root := doc.Content[0]
	p.mapping(root, "spec", map[string]func(k, v *yaml.Node){
		"outcomes": func(_, v *yaml.Node) {
			p.entries(v, "outcomes", func(k, v *yaml.Node) {
				e := &rawEnum{rawName: p.name(k)}
				p.mapping(v, "outcome enumeration "+strconv.Quote(k.Value), map[string]func(k, v *yaml.Node){
					"description": func(_, v *yaml.Node) { e.desc = p.str(v) },
					"values":      func(_, v *yaml.Node) { e.values = p.descs(v, "values") },
				}, "values")
				f.outcomes = append(f.outcomes, e)
			})
		},
		"machine": func(_, v *yaml.Node) { f.machine = p.machine(v) },
		"product": func(_, v *yaml.Node) { f.product = p.product(v) },
		"classifiers": func(_, v *yaml.Node) {
			p.entries(v, "classifiers", func(k, v *yaml.Node) {
				f.classifiers = append(f.classifiers, p.classifier(k, v))
			})
		},
	})
	if f.machine == nil && len(f.outcomes) == 0 && len(f.classifiers) == 0 && f.product == nil && len(d.list) == 0 {
		d.add(p.pos(root), "spec declares none of \"machine\", \"outcomes\", \"classifiers\", \"product\"")
	}
	return f
}

func (p *parser) product(n *yaml.Node) *rawProduct {
	pr := &rawProduct{rawName: rawName{pos: p.pos(n)}}
	p.mapping(n, "product", map[string]func(k, v *yaml.Node){
		"name":        func(_, v *yaml.Node) { pr.rawName = p.name(v) },
		"description": func(_, v *yaml.Node) { pr.desc = p.str(v) },
		"components": func(_, v *yaml.Node) {
			p.entries(v, "components", func(k, v *yaml.Node) {
				c := rawComponent{rawName: p.name(k), count: 1}
				p.mapping(v, "component "+strconv.Quote(k.Value), map[string]func(k, v *yaml.Node){
					"machine":  func(_, v *yaml.Node) { c.machine = p.name(v) },
					"count":    func(_, v *yaml.Node) { c.count = p.int(v) },
					"internal": func(_, v *yaml.Node) { c.internal = p.list(v) },
					"options": func(_, v *yaml.Node) {
						p.entries(v, "options", func(k, v *yaml.Node) {
							c.options = append(c.options, rawSet{rawName: p.name(k), value: p.scalar(v)})
						})
					},
				}, "machine")
				pr.components = append(pr.components, c)
			})
		},
		"sync": func(_, v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				p.d.add(p.pos(v), "sync: want a list, got %s", kindName(v))
				return
			}
			for _, r := range v.Content {
				sy := rawSync{pos: p.pos(r)}
				p.mapping(r, "sync rule", map[string]func(k, v *yaml.Node){
					"from":            func(_, v *yaml.Node) { sy.from = p.name(v) },
					"action":          func(_, v *yaml.Node) { sy.action = p.name(v) },
					"to":              func(_, v *yaml.Node) { sy.to = p.name(v) },
					"event":           func(_, v *yaml.Node) { sy.event = p.name(v) },
					"outcome":         func(_, v *yaml.Node) { sy.outcome = p.name(v) },
					"onReject":        func(_, v *yaml.Node) { sy.onReject = p.name(v) },
					"onRejectOutcome": func(_, v *yaml.Node) { sy.onRejectOutcome = p.name(v) },
				}, "from", "action", "to", "event")
				pr.sync = append(pr.sync, sy)
			}
		},
		"requests": func(_, v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				p.d.add(p.pos(v), "requests: want a list, got %s", kindName(v))
				return
			}
			for _, r := range v.Content {
				rq := rawRequest{pos: p.pos(r)}
				p.mapping(r, "request", map[string]func(k, v *yaml.Node){
					"from":            func(_, v *yaml.Node) { rq.from = p.name(v) },
					"states":          func(_, v *yaml.Node) { rq.states = p.list(v) },
					"to":              func(_, v *yaml.Node) { rq.to = p.name(v) },
					"event":           func(_, v *yaml.Node) { rq.event = p.name(v) },
					"outcome":         func(_, v *yaml.Node) { rq.outcome = p.name(v) },
					"onReject":        func(_, v *yaml.Node) { rq.onReject = p.name(v) },
					"onRejectOutcome": func(_, v *yaml.Node) { rq.onRejectOutcome = p.name(v) },
				}, "from", "states", "to", "event")
				pr.requests = append(pr.requests, rq)
			}
		},
		"outlives": func(_, v *yaml.Node) {
			o := &rawOutlives{}
			p.mapping(v, "outlives", map[string]func(k, v *yaml.Node){
				"component": func(_, v *yaml.Node) { o.component = p.name(v) },
				"others":    func(_, v *yaml.Node) { o.others = p.list(v) },
			}, "component", "others")
			pr.outlives = o
		},
		"obligations": func(_, v *yaml.Node) { pr.obligations = p.obligations(v) },
	}, "name", "components")
	return pr
}

func (p *parser) classifier(k, n *yaml.Node) *rawClassifier {
	c := &rawClassifier{rawName: p.name(k)}
	opt := func(dst **rawName) func(_, v *yaml.Node) {
		return func(_, v *yaml.Node) { x := p.name(v); *dst = &x }
	}
	errnos := func(dst *[]rawErrno) func(_, v *yaml.Node) {
		return func(_, v *yaml.Node) {
			p.entries(v, "errors", func(k, v *yaml.Node) {
				e := rawErrno{rawName: p.name(k)}
				if v.Kind == yaml.MappingNode {
					p.mapping(v, "errno "+strconv.Quote(k.Value), map[string]func(k, v *yaml.Node){
						"outcome": func(_, v *yaml.Node) { e.outcome = p.name(v) },
						"why":     func(_, v *yaml.Node) { e.why = p.str(v) },
					}, "outcome")
				} else {
					e.outcome = p.name(v)
				}
				*dst = append(*dst, e)
			})
		}
	}
	p.mapping(n, "classifier "+strconv.Quote(k.Value), map[string]func(k, v *yaml.Node){
		"description": func(_, v *yaml.Node) { c.desc = p.str(v) },
		"outcome":     func(_, v *yaml.Node) { c.outcome = p.name(v) },
		"success":     opt(&c.success),
		"zero":        opt(&c.zero),
		"default":     opt(&c.deflt),
		"errors":      errnos(&c.errors),
		"linux":       errnos(&c.linux),
		"darwin":      errnos(&c.darwin),
	}, "outcome", "success", "default")
	return c
}

func (p *parser) machine(n *yaml.Node) *rawMachine {
	m := &rawMachine{rawName: rawName{pos: p.pos(n)}}
	p.mapping(n, "machine", map[string]func(k, v *yaml.Node){
		"name":        func(_, v *yaml.Node) { m.rawName = p.name(v) },
		"description": func(_, v *yaml.Node) { m.desc = p.str(v) },
		"states": func(_, v *yaml.Node) {
			p.entries(v, "states", func(k, v *yaml.Node) {
				s := &rawState{rawName: p.name(k)}
				p.mapping(v, "state "+strconv.Quote(k.Value), map[string]func(k, v *yaml.Node){
					"description": func(_, v *yaml.Node) { s.desc = p.str(v) },
					"initial":     func(_, v *yaml.Node) { s.initial = p.bool(v) },
					"terminal":    func(_, v *yaml.Node) { s.terminal = p.bool(v) },
				})
				m.states = append(m.states, s)
			})
		},
		"events": func(_, v *yaml.Node) {
			p.entries(v, "events", func(k, v *yaml.Node) {
				e := &rawEvent{rawName: p.name(k)}
				p.mapping(v, "event "+strconv.Quote(k.Value), map[string]func(k, v *yaml.Node){
					"description": func(_, v *yaml.Node) { e.desc = p.str(v) },
					"outcome":     func(_, v *yaml.Node) { o := p.name(v); e.outcome = &o },
					"abnormal":    func(_, v *yaml.Node) { e.abnormal = p.bool(v) },
				})
				m.events = append(m.events, e)
			})
		},
		"variables": func(_, v *yaml.Node) {
			p.entries(v, "variables", func(k, v *yaml.Node) {
				x := &rawVar{rawName: p.name(k)}
				p.mapping(v, "variable "+strconv.Quote(k.Value), map[string]func(k, v *yaml.Node){
					"description": func(_, v *yaml.Node) { x.desc = p.str(v) },
					"type":        func(_, v *yaml.Node) { x.typ = p.name(v) },
					"values":      func(_, v *yaml.Node) { x.values = p.descs(v, "values") },
					"min":         func(_, v *yaml.Node) { i := p.int(v); x.min = &i },
					"max":         func(_, v *yaml.Node) { i := p.int(v); x.max = &i },
					"initial":     func(_, v *yaml.Node) { x.initial = p.scalar(v) },
					"option":      func(_, v *yaml.Node) { x.option = p.bool(v) },
				}, "type")
				m.vars = append(m.vars, x)
			})
		},
		"actions": func(_, v *yaml.Node) {
			p.entries(v, "actions", func(k, v *yaml.Node) {
				a := &rawAction{rawName: p.name(k)}
				p.mapping(v, "action "+strconv.Quote(k.Value), map[string]func(k, v *yaml.Node){
					"description": func(_, v *yaml.Node) { a.desc = p.str(v) },
					"max": func(_, v *yaml.Node) {
						a.max = p.int(v)
						if a.max < 1 || a.max > 8 {
							p.d.add(p.pos(v), "action %q: max must be between 1 and 8 (omit it for no bound)", k.Value)
						}
					},
					"after":    func(_, v *yaml.Node) { x := p.name(v); a.after = &x },
					"notAfter": func(_, v *yaml.Node) { a.notAfter = p.list(v) },
					"with":     func(_, v *yaml.Node) { a.with = p.list(v) },
					"effects": func(_, v *yaml.Node) {
						p.entries(v, "effects", func(k, v *yaml.Node) {
							a.effects = append(a.effects, rawSet{rawName: p.name(k), value: p.scalar(v)})
						})
					},
				})
				m.actions = append(m.actions, a)
			})
		},
		"transitions": func(_, v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				p.d.add(p.pos(v), "transitions: want a list of rows, got %s", kindName(v))
				return
			}
			for _, r := range v.Content {
				if r.Kind != yaml.MappingNode {
					p.d.add(p.pos(r), "transition row: want a mapping, got %s", kindName(r))
					continue
				}
				m.transitions = append(m.transitions, p.row(r))
			}
		},
		"invariants": func(_, v *yaml.Node) {
			p.entries(v, "invariants", func(k, v *yaml.Node) {
				inv := &rawInvariant{rawName: p.name(k)}
				p.mapping(v, "invariant "+strconv.Quote(k.Value), map[string]func(k, v *yaml.Node){
					"description": func(_, v *yaml.Node) { inv.desc = p.str(v) },
					"expr":        func(_, v *yaml.Node) { inv.expr = p.scalar(v) },
				}, "expr")
				m.invariants = append(m.invariants, inv)
			})
		},
		"obligations": func(_, v *yaml.Node) { m.obligations = p.obligations(v) },
	}, "name", "states", "events", "transitions")
	return m
}

// obligations parses a mapping of name -> {description, after, then, before}.
func (p *parser) obligations(n *yaml.Node) []*rawObligation {
	var out []*rawObligation
	p.entries(n, "obligations", func(k, v *yaml.Node) {
		o := &rawObligation{rawName: p.name(k)}
		p.mapping(v, "obligation "+strconv.Quote(k.Value), map[string]func(k, v *yaml.Node){
			"description": func(_, v *yaml.Node) { o.desc = p.str(v) },
			"after":       func(_, v *yaml.Node) { o.after = p.terms(v, "after") },
			"then":        func(_, v *yaml.Node) { o.then = p.terms(v, "then") },
			"before":      func(_, v *yaml.Node) { o.before = p.terms(v, "before"); o.hasBefore = true },
		}, "before")
		out = append(out, o)
	})
	return out
}

// terms parses one term or a list of them; each is a scalar.
func (p *parser) terms(n *yaml.Node, what string) []rawTerm {
	var items []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		items = []*yaml.Node{n}
	case yaml.SequenceNode:
		items = n.Content
	default:
		p.d.add(p.pos(n), "%s: want a term or a list of terms, got %s", what, kindName(n))
		return nil
	}
	var out []rawTerm
	for _, c := range items {
		if c.Kind != yaml.ScalarNode || c.Value == "" {
			p.d.add(p.pos(c), "%s: want an action, an event, event(outcome, ...), a state, terminal or a condition, got %s", what, kindName(c))
			continue
		}
		// In a flow list YAML splits event(a, b) at its comma: join the
		// pieces back, as the parentheses say.
		if k := len(out) - 1; k >= 0 && c.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 && strings.Count(out[k].text, "(") > strings.Count(out[k].text, ")") {
			out[k].text += ", " + c.Value
			node := *out[k].node
			node.Value = out[k].text
			out[k].node = &node
			continue
		}
		out = append(out, rawTerm{text: c.Value, node: c, pos: p.pos(c)})
	}
	if len(out) == 0 && len(items) == 0 {
		p.d.add(p.pos(n), "%s: the list is empty", what)
	}
	return out
}

func (p *parser) row(n *yaml.Node) *rawRow {
	r := &rawRow{pos: p.pos(n)}
	p.mapping(n, "transition row", map[string]func(k, v *yaml.Node){
		"from":     func(_, v *yaml.Node) { r.from = p.list(v) },
		"except":   func(_, v *yaml.Node) { r.except = p.list(v) },
		"on":       func(_, v *yaml.Node) { r.on, r.pairs = p.triggers(v) },
		"exceptOn": func(_, v *yaml.Node) { r.exceptOn = p.list(v) },
		"outcome":  func(_, v *yaml.Node) { r.outcome = p.list(v) },
		"when":     func(_, v *yaml.Node) { r.when = p.scalar(v) },
		"to":       func(_, v *yaml.Node) { t := p.name(v); r.to = &t; r.transition = true },
		"do": func(_, v *yaml.Node) {
			r.transition = true
			if v.Kind == yaml.SequenceNode {
				r.do, r.groups = p.doList(v)
				return
			}
			l := p.list(v)
			if l.any {
				p.d.add(l.pos, "do: \"*\" is not an action")
			}
			r.do = l.names
		},
		"set": func(_, v *yaml.Node) {
			r.transition = true
			p.entries(v, "set", func(k, v *yaml.Node) {
				r.set = append(r.set, rawSet{rawName: p.name(k), value: p.scalar(v)})
			})
		},
		"ignore": func(_, v *yaml.Node) { r.ignore = p.bool(v) },
		"reject": func(_, v *yaml.Node) { r.reject = p.bool(v) },
		"why":    func(_, v *yaml.Node) { r.reason = p.str(v) },
	}, "from", "on")
	return r
}

// doList parses a row's do list: action names and conditional action groups
// {when: EXPR, do: [actions]}.
func (p *parser) doList(n *yaml.Node) ([]rawName, []rawGroup) {
	var names []rawName
	var groups []rawGroup
	for _, c := range n.Content {
		switch {
		case c.Kind == yaml.ScalarNode && c.Value == "*":
			p.d.add(p.pos(c), "do: \"*\" is not an action")
		case c.Kind == yaml.MappingNode:
			g := rawGroup{pos: p.pos(c), at: len(names)}
			given := false // a do or set key, whatever its value

			p.mapping(c, "conditional actions", map[string]func(k, v *yaml.Node){
				"when": func(_, v *yaml.Node) { g.when = p.scalar(v) },
				"on": func(_, v *yaml.Node) {
					g.on, g.pairs = p.triggers(v)
					if g.on.any {
						p.d.add(g.on.pos, "conditional actions: on: \"*\" is every event the row answers; drop it")
					}
				},
				"do": func(_, v *yaml.Node) {
					given = true
					if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
						p.d.add(p.pos(v), "conditional actions: the do list is empty; drop the group")
						return
					}
					for _, a := range v.Content {
						if a.Kind == yaml.MappingNode {
							p.d.add(p.pos(a), "conditional actions do not nest: combine the conditions with && in one group")
							return
						}
					}
					l := p.list(v)
					if l.any {
						p.d.add(l.pos, "do: \"*\" is not an action")
					}
					g.do = l.names
				},
				"set": func(_, v *yaml.Node) {
					given = true
					p.entries(v, "set", func(k, v *yaml.Node) {
						g.set = append(g.set, rawSet{rawName: p.name(k), value: p.scalar(v)})
					})
				},
			})
			if g.when == nil && !g.on.set {
				p.d.add(g.pos, "conditional actions: give \"when\", \"on\" or both")
			}
			if !given {
				p.d.add(g.pos, "conditional actions: give \"do\", \"set\" or both")
			}
			groups = append(groups, g)
		default:
			names = append(names, p.name(c))
		}
	}
	return names, groups
}

// mapping walks a mapping node strictly: every key must be known and appear once,
// and the required keys must be present.
func (p *parser) mapping(n *yaml.Node, what string, fields map[string]func(k, v *yaml.Node), required ...string) {
	if n.Kind != yaml.MappingNode {
		p.d.add(p.pos(n), "%s: want a mapping, got %s", what, kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.d.add(p.pos(k), "%s: keys must be plain names", what)
			continue
		}
		fn, ok := fields[k.Value]
		if !ok {
			p.d.add(p.pos(k), "%s: unknown key %q (known: %s)", what, k.Value, keyList(fields))
			continue
		}
		if seen[k.Value] {
			p.d.add(p.pos(k), "%s: key %q given twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k, v)
	}
	for _, r := range required {
		if !seen[r] {
			p.d.add(p.pos(n), "%s: missing %q", what, r)
		}
	}
}

// entries walks a mapping of name -> declaration, in order, rejecting duplicates.
func (p *parser) entries(n *yaml.Node, what string, fn func(k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.d.add(p.pos(n), "%s: want a mapping of names, got %s", what, kindName(n))
		return
	}
	seen := map[string]Pos{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.d.add(p.pos(k), "%s: keys must be plain names", what)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			p.d.add(p.pos(k), "%s: %q declared twice (first at line %d)", what, k.Value, prev.Line)
			continue
		}
		seen[k.Value] = p.pos(k)
		fn(k, v)
	}
}

// descs parses a mapping of name -> description.
func (p *parser) descs(n *yaml.Node, what string) []rawDesc {
	var out []rawDesc
	p.entries(n, what, func(k, v *yaml.Node) {
		out = append(out, rawDesc{rawName: p.name(k), desc: p.str(v)})
	})
	return out
}

func (p *parser) list(n *yaml.Node) rawList {
	l := rawList{set: true, pos: p.pos(n)}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "*" {
			l.any = true
		} else {
			l.names = []rawName{p.name(n)}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind == yaml.ScalarNode && c.Value == "*" {
				p.d.add(p.pos(c), "\"*\" cannot be an element of a list; use it alone")
				continue
			}
			l.names = append(l.names, p.name(c))
		}
	default:
		p.d.add(p.pos(n), "want a name, a list of names or \"*\", got %s", kindName(n))
	}
	return l
}

// triggers parses an on list: an event, "*", or a list whose items are events
// and event(outcome, ...) pairs. In a flow list YAML splits event(a, b) at its
// comma; the pieces are joined back, as the parentheses say. The plain events
// are returned as a list (empty but set when every item is a pair).
func (p *parser) triggers(n *yaml.Node) (rawList, []rawPair) {
	var items []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "(") {
			return p.list(n), nil
		}
		items = []*yaml.Node{n}
	case yaml.SequenceNode:
		items = n.Content
	default:
		return p.list(n), nil
	}
	l := rawList{set: true, pos: p.pos(n)}
	var pairs []rawPair
	for i := 0; i < len(items); i++ {
		c := items[i]
		if c.Kind != yaml.ScalarNode || !strings.Contains(c.Value, "(") {
			if c.Kind == yaml.ScalarNode && c.Value == "*" {
				p.d.add(p.pos(c), "\"*\" cannot be an element of a list; use it alone")
				continue
			}
			l.names = append(l.names, p.name(c))
			continue
		}
		pieces := []*yaml.Node{c}
		open := func() bool {
			text := ""
			for _, x := range pieces {
				text += x.Value
			}
			return strings.Count(text, "(") > strings.Count(text, ")")
		}
		for c.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 && open() && i+1 < len(items) {
			next := items[i+1]
			if next.Kind != yaml.ScalarNode || next.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
				break
			}
			pieces = append(pieces, next)
			i++
		}
		pairs = append(pairs, p.pair(pieces))
	}
	return l, pairs
}

// pair parses event(outcome, ...), written in one scalar or, split by a flow
// list's commas, in several; every name keeps its own position.
func (p *parser) pair(pieces []*yaml.Node) rawPair {
	var texts []string
	for _, x := range pieces {
		texts = append(texts, x.Value)
	}
	whole := strings.Join(texts, ", ")
	first := pieces[0]
	pr := rawPair{rawName: rawName{pos: p.pos(first)}, text: whole}
	open := strings.Index(whole, "(")
	if strings.Count(whole, "(") != 1 || strings.Count(whole, ")") != 1 || !strings.HasSuffix(strings.TrimSpace(whole), ")") || strings.Index(whole, ")") < open {
		p.d.add(p.pos(first), "%q: want event(outcome, ...)", whole)
		pr.bad = true
		return pr
	}
	// at returns the position of byte off of piece x's text.
	at := func(x *yaml.Node, off int) Pos {
		pos := p.pos(x)
		if x.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			pos.Col++
		}
		if strings.Contains(x.Value, "\n") {
			pos.Col = 0
		} else {
			pos.Col += off
		}
		return pos
	}
	name := strings.TrimSpace(first.Value[:strings.Index(first.Value, "(")])
	pr.rawName = rawName{name: name, pos: at(first, strings.Index(first.Value, name))}
	if !isIdent(name) {
		p.d.add(pr.pos, "%q is not a valid event name: want a letter followed by letters and digits", name)
		pr.bad = true
	}
	for i, x := range pieces {
		text, base := x.Value, 0
		if i == 0 {
			base = strings.Index(text, "(") + 1
			text = text[base:]
		}
		if i == len(pieces)-1 {
			text = text[:strings.LastIndex(text, ")")]
		}
		for _, part := range strings.Split(text, ",") {
			o := strings.TrimSpace(part)
			pos := at(x, base+strings.Index(part, o))
			if part == "" && o == "" {
				pos = at(x, base)
			}
			base += len(part) + 1
			switch {
			case o == "*":
				p.d.add(pos, "%s: \"*\" is not an outcome; for every outcome of %s name it without parentheses (with outcome: \"*\")", whole, name)
				pr.bad = true
			case !isIdent(o):
				p.d.add(pos, "%s: %q is not a valid outcome name", whole, o)
				pr.bad = true
			default:
				pr.outcomes = append(pr.outcomes, rawName{name: o, pos: pos})
			}
		}
	}
	return pr
}

func (p *parser) name(n *yaml.Node) rawName {
	if n.Kind != yaml.ScalarNode {
		p.d.add(p.pos(n), "want a name, got %s", kindName(n))
		return rawName{pos: p.pos(n)}
	}
	if !isIdent(n.Value) {
		p.d.add(p.pos(n), "%q is not a valid name: want a letter followed by letters and digits", n.Value)
	}
	return rawName{name: n.Value, pos: p.pos(n)}
}

func (p *parser) str(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		p.d.add(p.pos(n), "want text, got %s", kindName(n))
		return ""
	}
	return n.Value
}

func (p *parser) scalar(n *yaml.Node) *yaml.Node {
	if n.Kind != yaml.ScalarNode {
		p.d.add(p.pos(n), "want a scalar, got %s", kindName(n))
		return nil
	}
	return n
}

func (p *parser) bool(n *yaml.Node) bool {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "true":
			return true
		case "false":
			return false
		}
	}
	p.d.add(p.pos(n), "want true or false, got %s", shortValue(n))
	return false
}

func (p *parser) int(n *yaml.Node) int {
	if n.Kind == yaml.ScalarNode {
		if i, err := strconv.Atoi(n.Value); err == nil && i > -1<<20 && i < 1<<20 {
			return i
		}
	}
	p.d.add(p.pos(n), "want an integer between -1048576 and 1048576, got %s", shortValue(n))
	return 0
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar " + shortValue(n)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func shortValue(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return kindName(n)
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return strconv.Quote(v)
}

func keyList(fields map[string]func(k, v *yaml.Node)) string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sortStrings(keys)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += k
	}
	return out
}

func isIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
