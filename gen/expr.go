package gen

import (
	"fmt"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Guards, updates and invariants are written in a small subset of Go expression
// syntax, parsed with go/parser and typed here:
//
//	bool:   true false  !x  x && y  x || y  a == b  a != b
//	int:    literals  x + 1  x - 1  -x  a < b  a <= b  a > b  a >= b
//	enum:   the bare value names of the variable compared against (policy == contain)
//	state:  in invariants only, "state" compared with state names (state != closed)
//
// Anything else (calls, selectors, other operators) is an error at its column.

type exprScope struct {
	m          *Machine
	allowState bool
}

// parseExpr parses and types the expression in node n. want is the type the
// expression must have; enumVar names the enumeration bare identifiers resolve to
// when want is KindEnum.
func (p *parser) parseExpr(n *yaml.Node, sc exprScope, want VarKind, enumVar int) *Expr {
	if n == nil {
		return nil
	}
	src := n.Value
	base := p.pos(n)
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		base.Col++
	}
	if strings.ContainsAny(src, "\n") {
		base.Col = 0 // a folded scalar: columns inside it are not meaningful
	}
	fset := token.NewFileSet()
	x, err := goparser.ParseExprFrom(fset, "", src, 0)
	if err != nil {
		msg := err.Error()
		if el, ok := err.(interface{ Unwrap() []error }); ok && len(el.Unwrap()) > 0 {
			msg = el.Unwrap()[0].Error()
		}
		p.d.add(base, "cannot parse expression %q: %s", src, trimPosPrefix(msg))
		return nil
	}
	c := &exprChecker{p: p, sc: sc, fset: fset, base: base, src: src}
	e := c.check(x, want, enumVar)
	if e == nil {
		return nil
	}
	if e.Kind != want || (want == KindEnum && e.Enum != enumVar) {
		c.errorf(x, "expression %q has type %s, want %s", src, c.typeName(e.Kind, e.Enum), c.typeName(want, enumVar))
		return nil
	}
	return e
}

type exprChecker struct {
	p    *parser
	sc   exprScope
	fset *token.FileSet
	base Pos
	src  string
}

func (c *exprChecker) errorf(n ast.Node, format string, args ...any) {
	pos := c.base
	if pos.Col > 0 {
		pos.Col += c.fset.Position(n.Pos()).Column - 1
	}
	c.p.d.add(pos, format, args...)
}

func (c *exprChecker) typeName(k VarKind, enum int) string {
	if k == KindEnum && enum >= 0 && enum < len(c.sc.m.Vars) {
		return "enum of " + strconv.Quote(c.sc.m.Vars[enum].Name)
	}
	return k.String()
}

// check types x. hint is the type a bare identifier that is not a variable should
// resolve to (an enum value or a state name), as on the other side of ==.
func (c *exprChecker) check(x ast.Expr, hint VarKind, hintEnum int) *Expr {
	switch x := x.(type) {
	case *ast.ParenExpr:
		return c.check(x.X, hint, hintEnum)
	case *ast.BasicLit:
		if x.Kind != token.INT {
			c.errorf(x, "only integer literals are allowed, got %s", x.Value)
			return nil
		}
		v, err := strconv.ParseInt(x.Value, 0, 64)
		if err != nil || v > 1<<20 {
			c.errorf(x, "integer %s out of range", x.Value)
			return nil
		}
		return &Expr{Op: OpConst, Value: int(v), Kind: KindInt, Enum: -1}
	case *ast.Ident:
		return c.ident(x, hint, hintEnum)
	case *ast.UnaryExpr:
		switch x.Op {
		case token.NOT:
			e := c.check(x.X, KindBool, -1)
			if e == nil || !c.want(x.X, e, KindBool) {
				return nil
			}
			return &Expr{Op: OpNot, L: e, Kind: KindBool, Enum: -1}
		case token.SUB:
			e := c.check(x.X, KindInt, -1)
			if e == nil || !c.want(x.X, e, KindInt) {
				return nil
			}
			return &Expr{Op: OpNeg, L: e, Kind: KindInt, Enum: -1}
		}
		c.errorf(x, "operator %s is not supported", x.Op)
		return nil
	case *ast.BinaryExpr:
		return c.binary(x)
	}
	c.errorf(x, "unsupported expression %q: use variables, literals, ! && || == != < <= > >= + -", c.slice(x))
	return nil
}

func (c *exprChecker) slice(x ast.Node) string {
	s, e := c.fset.Position(x.Pos()).Offset, c.fset.Position(x.End()).Offset
	if s < 0 || e > len(c.src) || s > e {
		return c.src
	}
	return c.src[s:e]
}

func (c *exprChecker) want(x ast.Expr, e *Expr, k VarKind) bool {
	if e.Kind != k {
		c.errorf(x, "%q has type %s, want %s", c.slice(x), c.typeName(e.Kind, e.Enum), k)
		return false
	}
	return true
}

var binOps = map[token.Token]Op{
	token.LAND: OpAnd, token.LOR: OpOr, token.EQL: OpEq, token.NEQ: OpNe,
	token.LSS: OpLt, token.LEQ: OpLe, token.GTR: OpGt, token.GEQ: OpGe,
	token.ADD: OpAdd, token.SUB: OpSub,
}

func (c *exprChecker) binary(x *ast.BinaryExpr) *Expr {
	op, ok := binOps[x.Op]
	if !ok {
		c.errorf(x, "operator %s is not supported", x.Op)
		return nil
	}
	switch op {
	case OpAnd, OpOr:
		l, r := c.check(x.X, KindBool, -1), c.check(x.Y, KindBool, -1)
		if l == nil || r == nil || !c.want(x.X, l, KindBool) || !c.want(x.Y, r, KindBool) {
			return nil
		}
		return &Expr{Op: op, L: l, R: r, Kind: KindBool, Enum: -1}
	case OpAdd, OpSub, OpLt, OpLe, OpGt, OpGe:
		l, r := c.check(x.X, KindInt, -1), c.check(x.Y, KindInt, -1)
		if l == nil || r == nil || !c.want(x.X, l, KindInt) || !c.want(x.Y, r, KindInt) {
			return nil
		}
		k := KindBool
		if op == OpAdd || op == OpSub {
			k = KindInt
		}
		return &Expr{Op: op, L: l, R: r, Kind: k, Enum: -1}
	}
	// == and !=: type the side that names a variable first, so that a bare name on
	// the other side resolves to a value of its enumeration (or a state).
	first, second := x.X, x.Y
	if !c.isVar(x.X) && c.isVar(x.Y) {
		first, second = x.Y, x.X
	}
	a := c.check(first, KindInt, -1)
	if a == nil {
		return nil
	}
	b := c.check(second, a.Kind, a.Enum)
	if b == nil {
		return nil
	}
	if a.Kind != b.Kind || (a.Kind == KindEnum && a.Enum != b.Enum) {
		c.errorf(x, "mismatched types in %q: %s and %s", c.slice(x), c.typeName(a.Kind, a.Enum), c.typeName(b.Kind, b.Enum))
		return nil
	}
	l, r := a, b
	if first != x.X {
		l, r = b, a
	}
	return &Expr{Op: op, L: l, R: r, Kind: KindBool, Enum: -1}
}

func (c *exprChecker) isVar(x ast.Expr) bool {
	for {
		p, ok := x.(*ast.ParenExpr)
		if !ok {
			break
		}
		x = p.X
	}
	id, ok := x.(*ast.Ident)
	if !ok {
		return true // compound expressions have their own type
	}
	if id.Name == "state" && c.sc.allowState {
		return true
	}
	return c.varIndex(id.Name) >= 0
}

func (c *exprChecker) varIndex(name string) int {
	for i, v := range c.sc.m.Vars {
		if v.Name == name {
			return i
		}
	}
	return -1
}

func (c *exprChecker) ident(x *ast.Ident, hint VarKind, hintEnum int) *Expr {
	switch x.Name {
	case "true":
		return &Expr{Op: OpConst, Value: 1, Kind: KindBool, Enum: -1}
	case "false":
		return &Expr{Op: OpConst, Value: 0, Kind: KindBool, Enum: -1}
	case "state":
		if c.sc.allowState {
			return &Expr{Op: OpVar, Var: StateVar, Kind: KindState, Enum: -1}
		}
		c.errorf(x, "\"state\" may only be used in invariants")
		return nil
	}
	if i := c.varIndex(x.Name); i >= 0 {
		v := c.sc.m.Vars[i]
		e := &Expr{Op: OpVar, Var: i, Kind: v.Kind, Enum: -1}
		if v.Kind == KindEnum {
			e.Enum = i
		}
		return e
	}
	switch hint {
	case KindEnum:
		v := c.sc.m.Vars[hintEnum]
		for j, val := range v.Values {
			if val.Name == x.Name {
				return &Expr{Op: OpConst, Value: j, Kind: KindEnum, Enum: hintEnum}
			}
		}
		c.errorf(x, "%q is not a value of variable %q (values: %s)", x.Name, v.Name, joinNamed(v.Values))
		return nil
	case KindState:
		for j, s := range c.sc.m.States {
			if s.Name == x.Name {
				return &Expr{Op: OpConst, Value: j, Kind: KindState, Enum: -1}
			}
		}
		c.errorf(x, "%q is not a state of machine %q", x.Name, c.sc.m.Name)
		return nil
	}
	c.errorf(x, "unknown name %q: not a variable of machine %q", x.Name, c.sc.m.Name)
	return nil
}

func joinNamed(ns []Named) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.Name
	}
	return strings.Join(s, ", ")
}

func trimPosPrefix(msg string) string {
	// go/parser messages start with "1:5: "; the position is reported separately.
	if i := strings.Index(msg, ": "); i >= 0 && strings.Count(msg[:i], ":") <= 1 {
		if _, err := fmt.Sscanf(msg[:i], "%d:%d", new(int), new(int)); err == nil {
			return msg[i+2:]
		}
	}
	return msg
}

// Eval computes e in a configuration: state and the variables' values.
func (e *Expr) Eval(state int, vals []int) int {
	switch e.Op {
	case OpConst:
		return e.Value
	case OpVar:
		if e.Var == StateVar {
			return state
		}
		return vals[e.Var]
	case OpNot:
		return 1 - e.L.Eval(state, vals)
	case OpNeg:
		return -e.L.Eval(state, vals)
	case OpAnd:
		if e.L.Eval(state, vals) == 0 {
			return 0
		}
		return e.R.Eval(state, vals)
	case OpOr:
		if e.L.Eval(state, vals) != 0 {
			return 1
		}
		return e.R.Eval(state, vals)
	case OpAdd:
		return e.L.Eval(state, vals) + e.R.Eval(state, vals)
	case OpSub:
		return e.L.Eval(state, vals) - e.R.Eval(state, vals)
	}
	l, r := e.L.Eval(state, vals), e.R.Eval(state, vals)
	var b bool
	switch e.Op {
	case OpEq:
		b = l == r
	case OpNe:
		b = l != r
	case OpLt:
		b = l < r
	case OpLe:
		b = l <= r
	case OpGt:
		b = l > r
	case OpGe:
		b = l >= r
	}
	if b {
		return 1
	}
	return 0
}

// Vars appends to dst the indices of the variables e reads.
func (e *Expr) Vars(dst []int) []int {
	if e == nil {
		return dst
	}
	if e.Op == OpVar && e.Var >= 0 {
		for _, v := range dst {
			if v == e.Var {
				return dst
			}
		}
		dst = append(dst, e.Var)
	}
	dst = e.L.Vars(dst)
	return e.R.Vars(dst)
}

// Format renders e in the spec's syntax with minimal parentheses; names come from m.
func (e *Expr) Format(m *Machine) string {
	return e.format(m, 0)
}

var opText = map[Op]string{
	OpAnd: "&&", OpOr: "||", OpEq: "==", OpNe: "!=", OpLt: "<", OpLe: "<=",
	OpGt: ">", OpGe: ">=", OpAdd: "+", OpSub: "-",
}

// Prec returns the Go precedence of a binary operator (higher binds tighter).
func (o Op) Prec() int {
	switch o {
	case OpOr:
		return 1
	case OpAnd:
		return 2
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		return 3
	case OpAdd, OpSub:
		return 4
	}
	return 5
}

// Text returns the Go spelling of a binary operator.
func (o Op) Text() string { return opText[o] }

func (e *Expr) format(m *Machine, outer int) string {
	switch e.Op {
	case OpConst:
		switch e.Kind {
		case KindBool:
			return strconv.FormatBool(e.Value != 0)
		case KindEnum:
			return m.Vars[e.Enum].Values[e.Value].Name
		case KindState:
			return m.States[e.Value].Name
		}
		return strconv.Itoa(e.Value)
	case OpVar:
		if e.Var == StateVar {
			return "state"
		}
		return m.Vars[e.Var].Name
	case OpNot:
		return "!" + e.L.format(m, 5)
	case OpNeg:
		return "-" + e.L.format(m, 5)
	}
	p := e.Op.Prec()
	s := e.L.format(m, p) + " " + e.Op.Text() + " " + e.R.format(m, p+1)
	if p < outer {
		return "(" + s + ")"
	}
	return s
}
