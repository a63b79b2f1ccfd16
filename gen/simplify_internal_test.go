package gen

import (
	"math/rand/v2"
	"testing"
)

// simplify leaves out of an expanded guard what the rest of it implies; the
// guard must stay the same function of the variables. Random guards and
// group terms over a few small variables check it on every valuation.
func TestSimplifyKeepsTheGuard(t *testing.T) {
	m := &Machine{Name: "m", Vars: []Var{
		{Name: "a", Kind: KindBool, Min: 0, Max: 1},
		{Name: "b", Kind: KindBool, Min: 0, Max: 1},
		{Name: "e", Kind: KindEnum, Min: 0, Max: 2, Values: []Named{{Name: "x"}, {Name: "y"}, {Name: "z"}}},
		{Name: "n", Kind: KindInt, Min: 0, Max: 3},
	}}
	rng := rand.New(rand.NewPCG(3, 4))
	bool_ := func(op Op, l, r *Expr) *Expr { return &Expr{Op: op, L: l, R: r, Kind: KindBool, Enum: -1} }
	var gen func(depth int) *Expr
	gen = func(depth int) *Expr {
		if depth == 0 || rng.IntN(3) == 0 {
			switch rng.IntN(4) {
			case 0, 1:
				return &Expr{Op: OpVar, Var: rng.IntN(2), Kind: KindBool, Enum: -1}
			case 2:
				op := []Op{OpEq, OpNe}[rng.IntN(2)]
				return bool_(op, &Expr{Op: OpVar, Var: 2, Kind: KindEnum, Enum: 2}, &Expr{Op: OpConst, Value: rng.IntN(3), Kind: KindEnum, Enum: 2})
			default:
				op := []Op{OpLt, OpLe, OpEq, OpNe, OpGe}[rng.IntN(5)]
				return bool_(op, &Expr{Op: OpVar, Var: 3, Kind: KindInt, Enum: -1}, &Expr{Op: OpConst, Value: rng.IntN(4), Kind: KindInt, Enum: -1})
			}
		}
		switch rng.IntN(3) {
		case 0:
			return notExpr(gen(depth - 1))
		case 1:
			return bool_(OpAnd, gen(depth-1), gen(depth-1))
		}
		return bool_(OpOr, gen(depth-1), gen(depth-1))
	}
	vals := make([]int, len(m.Vars))
	for range 3000 {
		var guard *Expr
		if rng.IntN(4) > 0 {
			guard = gen(3)
		}
		var terms []*Expr
		for range 1 + rng.IntN(3) {
			x := gen(2)
			if rng.IntN(2) == 0 {
				x = notExpr(x)
			}
			terms = append(terms, x)
		}
		want := guard
		for _, x := range terms {
			want = andExpr(want, x)
		}
		got := simplify(m, guard, terms)
		for vals[0] = 0; vals[0] <= 1; vals[0]++ {
			for vals[1] = 0; vals[1] <= 1; vals[1]++ {
				for vals[2] = 0; vals[2] <= 2; vals[2]++ {
					for vals[3] = 0; vals[3] <= 3; vals[3]++ {
						w, g := want.Eval(0, vals), 1
						if got != nil {
							g = got.Eval(0, vals)
						}
						if w != g {
							t.Fatalf("%s simplified to %v: %d instead of %d at %v", want.Format(m), formatOrTrue(m, got), g, w, vals)
						}
					}
				}
			}
		}
	}
}

func formatOrTrue(m *Machine, e *Expr) string {
	if e == nil {
		return "true"
	}
	return e.Format(m)
}
