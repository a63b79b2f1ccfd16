package gen

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/dave/jennifer/jen"
)

// Snapshots: every generated machine saves and restores its configuration (state
// and variables, options included) in a binary and a text form, and restores only
// configurations that are in range, satisfy the invariants and are reachable from
// an initial configuration under the table. The shared code, in fsm_gen.go, is
// driven by one table per machine (connSnapshot) that names the fields and their
// values and holds the reachable configurations the explorer found. The format is
// described in docs/spec-format.md, section Snapshots.

// snapshotVersion is the format version, the first byte of a binary snapshot and
// the "v1" after the machine's name in the text form.
const snapshotVersion = 1

// snapshotHeaderLen is the length of the binary header: the version, then the
// fingerprints of the machine's name and of its layout, 4 bytes each.
const snapshotHeaderLen = 9

// snapshotLayoutText is what the table fingerprint hashes: the machine's name, its
// states, and its variables with their kinds and value sets, in declaration order.
// Rows, actions, options and initial values are not part of it: they do not change
// what the bytes of a snapshot mean (the reachability check judges the rows).
func snapshotLayoutText(m *Machine) string {
	var b strings.Builder
	b.WriteString("machine " + m.Name + "\nstates")
	for _, s := range m.States {
		b.WriteString(" " + s.Name)
	}
	for _, v := range m.Vars {
		b.WriteString("\nvariable " + v.Name + " " + v.Kind.String())
		switch v.Kind {
		case KindEnum:
			for _, x := range v.Values {
				b.WriteString(" " + x.Name)
			}
		case KindInt:
			fmt.Fprintf(&b, " %d..%d", v.Min, v.Max)
		}
	}
	return b.String()
}

func fnv32a(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// snapshotHeader returns the 9-byte header of m's binary snapshots.
func snapshotHeader(m *Machine) [snapshotHeaderLen]byte {
	h := [snapshotHeaderLen]byte{snapshotVersion}
	for i, x := range []uint32{fnv32a(m.Name), fnv32a(snapshotLayoutText(m))} {
		for j := 0; j < 4; j++ {
			h[1+4*i+j] = byte(x >> (24 - 8*j))
		}
	}
	return h
}

// snapshotTextMax is the length of the longest text snapshot of m.
func snapshotTextMax(m *Machine) int {
	n := len(m.Name) + len(" v1") + len(" state=")
	longest := 0
	for _, s := range m.States {
		longest = max(longest, len(s.Name))
	}
	n += longest
	for _, v := range m.Vars {
		n += 2 + len(v.Name)
		switch v.Kind {
		case KindBool:
			n += len("false")
		case KindEnum:
			longest := 0
			for _, x := range v.Values {
				longest = max(longest, len(x.Name))
			}
			n += longest
		default:
			n += len(strconv.Itoa(v.Max))
		}
	}
	return n
}

// snapshotText renders configuration (state, vals) of m as UnmarshalText reads it.
func snapshotText(m *Machine, state int, vals []int) string {
	var b strings.Builder
	b.WriteString(m.Name + " v1 state=" + m.States[state].Name)
	for i := range m.Vars {
		b.WriteString(" " + m.Vars[i].Name + "=" + formatValue(&m.Vars[i], vals[i]))
	}
	return b.String()
}

// emitSnapshotShared writes the declarations of fsm_gen.go that the snapshot
// methods of every machine use:
//
//	type SnapshotError struct { Machine, Reason string; Foreign bool }
//	type snapshotField struct { name string; values []string; lo, hi uint8; stride uint32 }
//	type snapshotLayout struct { machine string; header [9]byte; fields []snapshotField; reachable []uint32; bits []uint64 }
//	func (l *snapshotLayout) decodeBinary(data []byte, c []uint8) error
//	func (l *snapshotLayout) appendText(b []byte, c []uint8) []byte
//	func (l *snapshotLayout) decodeText(text []byte, c []uint8) error
//	func (l *snapshotLayout) reach(c []uint8) error
func emitSnapshotShared(f *jen.File) {
	id, lit := jen.Id, jen.Lit
	l := func() *jen.Statement { return id("l") }
	fld := func(i jen.Code) *jen.Statement { return l().Dot("fields").Index(i) }
	itoa := func(c jen.Code) *jen.Statement { return jen.Qual("strconv", "Itoa").Call(c) }
	byteItoa := func(c jen.Code) *jen.Statement { return itoa(jen.Int().Call(c)) }
	quote := func(c jen.Code) *jen.Statement { return jen.Qual("strconv", "Quote").Call(jen.String().Call(c)) }
	fail := func(reason jen.Code, foreign bool) *jen.Statement {
		return jen.Return(l().Dot("fail").Call(reason, lit(foreign)))
	}
	method := func(name string) *jen.Statement {
		return f.Func().Params(id("l").Op("*").Id("snapshotLayout")).Id(name)
	}

	f.Comment("SnapshotError is returned by a machine's UnmarshalBinary and UnmarshalText when")
	f.Comment("the snapshot does not restore. The machine is left unchanged.")
	f.Type().Id("SnapshotError").Struct(
		jen.Comment("Machine is the machine that refused the snapshot."),
		id("Machine").String(),
		jen.Comment("Reason says what is wrong, naming the field, value or invariant."),
		id("Reason").String(),
		jen.Comment("Foreign is true when the snapshot's header is of another machine, another"),
		jen.Comment("format version or another version of the machine's table, rather than"),
		jen.Comment("damaged, out of range or unreachable."),
		id("Foreign").Bool(),
	)
	f.Func().Params(id("e").Op("*").Id("SnapshotError")).Id("Error").Params().String().Block(
		jen.Return(id("e").Dot("Machine").Op("+").Lit(": snapshot rejected: ").Op("+").Id("e").Dot("Reason")),
	)

	f.Comment("snapshotField is the state or one variable of a configuration, as a snapshot")
	f.Comment("holds it: one byte.")
	f.Type().Id("snapshotField").Struct(
		jen.Comment("name is \"state\" or the variable's name."),
		id("name").String(),
		jen.Comment("values are the names of the values (states, enum values, false and true);"),
		jen.Comment("nil for an int."),
		id("values").Index().String(),
		jen.Comment("lo and hi bound the value; hi is len(values)-1 when values is set."),
		jen.List(id("lo"), id("hi")).Uint8(),
		jen.Comment("stride is the field's weight in the number of a configuration."),
		id("stride").Uint32(),
	)
	f.Comment("snapshotLayout describes the configurations of one machine for its snapshots.")
	f.Type().Id("snapshotLayout").Struct(
		id("machine").String(),
		jen.Comment("header starts every binary snapshot: the format version, then the"),
		jen.Comment("fingerprints of the machine's name and of its table (states, variables and"),
		jen.Comment("their values), 4 bytes each, big-endian."),
		id("header").Index(lit(snapshotHeaderLen)).Byte(),
		jen.Comment("fields are the state, then the variables in declaration order."),
		id("fields").Index().Id("snapshotField"),
		jen.Comment("reachable holds the numbers of the reachable configurations, sorted, or"),
		jen.Comment("bits holds them as a bitset; when both are nil every configuration is."),
		id("reachable").Index().Uint32(),
		id("bits").Index().Uint64(),
	)
	f.Comment("snapshotBools are the values of a bool variable in a text snapshot.")
	f.Var().Id("snapshotBools").Op("=").Index().String().Values(lit("false"), lit("true"))
	f.Comment("snapshotBool is the byte of a bool variable in a binary snapshot.")
	f.Func().Id("snapshotBool").Params(id("b").Bool()).Uint8().Block(
		jen.If(id("b")).Block(jen.Return(lit(1))),
		jen.Return(lit(0)),
	)
	f.Comment("snapshotHex renders a fingerprint in errors.")
	f.Func().Id("snapshotHex").Params(id("b").Index().Byte()).String().Block(
		jen.Const().Id("digits").Op("=").Lit("0123456789abcdef"),
		id("s").Op(":=").Make(jen.Index().Byte(), lit(0), lit(2).Op("*").Len(id("b"))),
		jen.For(jen.List(id("_"), id("x")).Op(":=").Range().Id("b")).Block(
			id("s").Op("=").Append(id("s"), id("digits").Index(id("x").Op(">>").Lit(4)), id("digits").Index(id("x").Op("&").Lit(15))),
		),
		jen.Return(jen.String().Call(id("s"))),
	)
	f.Comment("snapshotToken returns the first run of bytes of b that are not white space,")
	f.Comment("and what follows it.")
	f.Func().Id("snapshotToken").Params(id("b").Index().Byte()).Params(id("tok"), id("rest").Index().Byte()).BlockFunc(func(b *jen.Group) {
		space := func(i string) *jen.Statement {
			c := id("b").Index(id(i))
			return jen.Parens(jen.Add(c).Op("==").LitRune(' ').Op("||").Add(c).Op("==").LitRune('\t').Op("||").Add(c).Op("==").LitRune('\n').Op("||").Add(c).Op("==").LitRune('\r'))
		}
		b.Id("i").Op(":=").Lit(0)
		b.For(id("i").Op("<").Len(id("b")).Op("&&").Add(space("i"))).Block(id("i").Op("++"))
		b.Id("j").Op(":=").Id("i")
		b.For(id("j").Op("<").Len(id("b")).Op("&&").Op("!").Add(space("j"))).Block(id("j").Op("++"))
		b.Return(id("b").Index(id("i").Op(":").Id("j")), id("b").Index(id("j").Op(":")))
	})

	f.Comment("fail returns the *SnapshotError of reason.")
	f.Func().Params(id("l").Op("*").Id("snapshotLayout")).Id("fail").Params(id("reason").String(), id("foreign").Bool()).Error().Block(
		jen.Return(jen.Op("&").Id("SnapshotError").Values(
			id("Machine").Op(":").Add(l().Dot("machine")),
			id("Reason").Op(":").Id("reason"),
			id("Foreign").Op(":").Id("foreign"),
		)),
	)
	f.Comment("what names field i in errors.")
	method("what").Params(id("i").Int()).String().Block(
		jen.If(id("i").Op("==").Lit(0)).Block(jen.Return(lit("state"))),
		jen.Return(lit("variable ").Op("+").Add(fld(id("i"))).Dot("name")),
	)
	f.Comment("outOfRange is the error of value x of field i, which is outside its domain.")
	method("outOfRange").Params(id("i").Int(), id("x").String()).Error().Block(
		id("f").Op(":=").Op("&").Add(fld(id("i"))),
		id("s").Op(":=").Add(l().Dot("what").Call(id("i"))).Op("+").Lit(": ").Op("+").Id("x").Op("+").Lit(" is out of range ").Op("+").Add(byteItoa(id("f").Dot("lo"))).Op("+").Lit("..").Op("+").Add(byteItoa(id("f").Dot("hi"))),
		jen.If(id("f").Dot("values").Op("!=").Nil()).Block(
			id("s").Op("+=").Lit(" (").Op("+").Qual("strings", "Join").Call(id("f").Dot("values"), lit(", ")).Op("+").Lit(")"),
		),
		fail(id("s"), false),
	)

	// decodeBinary
	size := func() *jen.Statement { return itoa(id("size")) }
	f.Comment("decodeBinary checks the header and length of a binary snapshot and the range")
	f.Comment("of each field, and writes the fields into c.")
	method("decodeBinary").Params(id("data").Index().Byte(), id("c").Index().Uint8()).Error().Block(
		jen.List(id("n"), id("size")).Op(":=").List(jen.Len(l().Dot("header")), jen.Len(l().Dot("header")).Op("+").Len(id("c"))),
		jen.Switch().Block(
			jen.Case(jen.Len(id("data")).Op("==").Lit(0)).Block(
				fail(lit("empty: a snapshot has ").Op("+").Add(size()).Op("+").Lit(" bytes"), false)),
			jen.Case(id("data").Index(lit(0)).Op("!=").Add(l().Dot("header").Index(lit(0)))).Block(
				fail(lit("format version ").Op("+").Add(byteItoa(id("data").Index(lit(0)))).Op("+").Lit("; this code reads version ").Op("+").Add(byteItoa(l().Dot("header").Index(lit(0)))), true)),
			jen.Case(jen.Len(id("data")).Op("<").Id("n")).Block(
				fail(lit("truncated: ").Op("+").Add(itoa(jen.Len(id("data")))).Op("+").Lit(" bytes of ").Op("+").Add(size()), false)),
			jen.Case(jen.String().Call(id("data").Index(lit(1).Op(":").Lit(5))).Op("!=").String().Call(l().Dot("header").Index(lit(1).Op(":").Lit(5)))).Block(
				fail(lit("taken of another machine (machine fingerprint ").Op("+").Id("snapshotHex").Call(id("data").Index(lit(1).Op(":").Lit(5))).Op("+").Lit(", want ").Op("+").Id("snapshotHex").Call(l().Dot("header").Index(lit(1).Op(":").Lit(5))).Op("+").Lit(")"), true)),
			jen.Case(jen.String().Call(id("data").Index(lit(5).Op(":").Id("n"))).Op("!=").String().Call(l().Dot("header").Index(lit(5).Op(":")))).Block(
				fail(lit("taken of another version of the table (table fingerprint ").Op("+").Id("snapshotHex").Call(id("data").Index(lit(5).Op(":").Id("n"))).Op("+").Lit(", want ").Op("+").Id("snapshotHex").Call(l().Dot("header").Index(lit(5).Op(":"))).Op("+").Lit(")"), true)),
			jen.Case(jen.Len(id("data")).Op("<").Id("size")).Block(
				fail(lit("truncated: ").Op("+").Add(itoa(jen.Len(id("data")))).Op("+").Lit(" bytes of ").Op("+").Add(size()), false)),
			jen.Case(jen.Len(id("data")).Op(">").Id("size")).Block(
				fail(lit("extra bytes: ").Op("+").Add(itoa(jen.Len(id("data")))).Op("+").Lit(" bytes instead of ").Op("+").Add(size()), false)),
		),
		jen.For(id("i").Op(":=").Range().Id("c")).Block(
			id("x").Op(":=").Id("data").Index(id("n").Op("+").Id("i")),
			jen.If(id("x").Op("<").Add(fld(id("i"))).Dot("lo").Op("||").Id("x").Op(">").Add(fld(id("i"))).Dot("hi")).Block(
				jen.Return(l().Dot("outOfRange").Call(id("i"), byteItoa(id("x")))),
			),
			id("c").Index(id("i")).Op("=").Id("x"),
		),
		jen.Return(jen.Nil()),
	)

	// text
	f.Comment("appendField appends name=value of field i with value x.")
	method("appendField").Params(id("b").Index().Byte(), id("i").Int(), id("x").Uint8()).Index().Byte().Block(
		id("f").Op(":=").Op("&").Add(fld(id("i"))),
		id("b").Op("=").Append(id("b"), id("f").Dot("name").Op("...")),
		id("b").Op("=").Append(id("b"), jen.LitRune('=')),
		jen.If(jen.Int().Call(id("x")).Op("<").Len(id("f").Dot("values"))).Block(
			jen.Return(jen.Append(id("b"), id("f").Dot("values").Index(id("x")).Op("..."))),
		),
		jen.Return(jen.Qual("strconv", "AppendUint").Call(id("b"), jen.Uint64().Call(id("x")), lit(10))),
	)
	f.Comment("appendText appends the text snapshot of configuration c.")
	method("appendText").Params(id("b").Index().Byte(), id("c").Index().Uint8()).Index().Byte().Block(
		id("b").Op("=").Append(id("b"), l().Dot("machine").Op("...")),
		id("b").Op("=").Append(id("b"), lit(" v"+strconv.Itoa(snapshotVersion)).Op("...")),
		jen.For(jen.List(id("i"), id("x")).Op(":=").Range().Id("c")).Block(
			id("b").Op("=").Append(id("b"), jen.LitRune(' ')),
			id("b").Op("=").Add(l().Dot("appendField").Call(id("b"), id("i"), id("x"))),
		),
		jen.Return(id("b")),
	)
	f.Comment("field returns the index of the field called name, or -1.")
	method("field").Params(id("name").Index().Byte()).Int().Block(
		jen.For(id("i").Op(":=").Range().Add(l().Dot("fields"))).Block(
			jen.If(fld(id("i")).Dot("name").Op("==").String().Call(id("name"))).Block(jen.Return(id("i"))),
		),
		jen.Return(lit(-1)),
	)
	f.Comment("parse returns the value of field i that v names.")
	method("parse").Params(id("i").Int(), id("v").Index().Byte()).Params(jen.Uint8(), jen.Error()).Block(
		id("f").Op(":=").Op("&").Add(fld(id("i"))),
		jen.If(id("f").Dot("values").Op("!=").Nil()).Block(
			jen.For(jen.List(id("x"), id("name")).Op(":=").Range().Id("f").Dot("values")).Block(
				jen.If(id("name").Op("==").String().Call(id("v"))).Block(jen.Return(jen.Uint8().Call(id("x")), jen.Nil())),
			),
			jen.Return(lit(0), l().Dot("fail").Call(l().Dot("what").Call(id("i")).Op("+").Lit(": unknown value ").Op("+").Add(quote(id("v"))).Op("+").Lit("; one of ").Op("+").Qual("strings", "Join").Call(id("f").Dot("values"), lit(", ")), lit(false))),
		),
		id("n").Op(":=").Lit(0),
		jen.For(jen.List(id("_"), id("d")).Op(":=").Range().Id("v")).Block(
			jen.If(id("d").Op("<").LitRune('0').Op("||").Id("d").Op(">").LitRune('9')).Block(
				id("n").Op("=").Lit(-1),
				jen.Break(),
			),
			jen.If(id("n").Op("<").Lit(1000)).Block(
				id("n").Op("=").Id("n").Op("*").Lit(10).Op("+").Int().Call(id("d").Op("-").LitRune('0')),
			),
		),
		jen.If(jen.Len(id("v")).Op("==").Lit(0).Op("||").Id("n").Op("<").Lit(0)).Block(
			jen.Return(lit(0), l().Dot("fail").Call(l().Dot("what").Call(id("i")).Op("+").Lit(": ").Op("+").Add(quote(id("v"))).Op("+").Lit(" is not a number"), lit(false))),
		),
		jen.If(id("n").Op("<").Int().Call(id("f").Dot("lo")).Op("||").Id("n").Op(">").Int().Call(id("f").Dot("hi"))).Block(
			jen.Return(lit(0), l().Dot("outOfRange").Call(id("i"), jen.String().Call(id("v")))),
		),
		jen.Return(jen.Uint8().Call(id("n")), jen.Nil()),
	)
	f.Comment("decodeText parses a text snapshot, checking the range of each field, and")
	f.Comment("writes the fields into c.")
	method("decodeText").Params(id("text").Index().Byte(), id("c").Index().Uint8()).Error().Block(
		jen.Var().Id("buf").Index(lit(64)).Bool(),
		jen.Var().Id("seen").Index().Bool(),
		jen.If(jen.Len(id("c")).Op("<=").Len(id("buf"))).Block(
			id("seen").Op("=").Id("buf").Index(jen.Op(":").Len(id("c"))),
		).Else().Block(
			id("seen").Op("=").Make(jen.Index().Bool(), jen.Len(id("c"))),
		),
		jen.List(id("tok"), id("rest")).Op(":=").Id("snapshotToken").Call(id("text")),
		jen.Switch().Block(
			jen.Case(jen.Len(id("tok")).Op("==").Lit(0)).Block(fail(lit("empty text"), false)),
			jen.Case(jen.String().Call(id("tok")).Op("!=").Add(l().Dot("machine"))).Block(
				fail(lit("taken of another machine: the text starts with ").Op("+").Add(quote(id("tok"))), true)),
		),
		jen.List(id("tok"), id("rest")).Op("=").Id("snapshotToken").Call(id("rest")),
		jen.Switch().Block(
			jen.Case(jen.Len(id("tok")).Op("==").Lit(0)).Block(fail(lit("no format version after the machine's name"), false)),
			jen.Case(jen.String().Call(id("tok")).Op("!=").Lit("v"+strconv.Itoa(snapshotVersion))).Block(
				fail(lit("format version ").Op("+").Add(quote(id("tok"))).Op("+").Lit("; this code reads v"+strconv.Itoa(snapshotVersion)), true)),
		),
		jen.For().BlockFunc(func(b *jen.Group) {
			b.List(id("tok"), id("rest")).Op("=").Id("snapshotToken").Call(id("rest"))
			b.If(jen.Len(id("tok")).Op("==").Lit(0)).Block(jen.Break())
			b.Id("eq").Op(":=").Lit(0)
			b.For(id("eq").Op("<").Len(id("tok")).Op("&&").Id("tok").Index(id("eq")).Op("!=").LitRune('=')).Block(id("eq").Op("++"))
			b.If(id("eq").Op("==").Len(id("tok"))).Block(fail(quote(id("tok")).Op("+").Lit(" is not name=value"), false))
			b.Id("i").Op(":=").Add(l().Dot("field").Call(id("tok").Index(jen.Op(":").Id("eq"))))
			b.If(id("i").Op("<").Lit(0)).Block(fail(lit("unknown variable ").Op("+").Add(quote(id("tok").Index(jen.Op(":").Id("eq")))), false))
			b.If(id("seen").Index(id("i"))).Block(fail(l().Dot("what").Call(id("i")).Op("+").Lit(" given twice"), false))
			b.Id("seen").Index(id("i")).Op("=").True()
			b.List(id("x"), id("err")).Op(":=").Add(l().Dot("parse").Call(id("i"), id("tok").Index(id("eq").Op("+").Lit(1).Op(":"))))
			b.If(id("err").Op("!=").Nil()).Block(jen.Return(id("err")))
			b.Id("c").Index(id("i")).Op("=").Id("x")
		}),
		jen.For(jen.List(id("i"), id("ok")).Op(":=").Range().Id("seen")).Block(
			jen.If(jen.Op("!").Id("ok")).Block(fail(l().Dot("what").Call(id("i")).Op("+").Lit(" missing"), false)),
		),
		jen.Return(jen.Nil()),
	)

	f.Comment("invariant is the error of a configuration that breaks an invariant; err is")
	f.Comment("what CheckInvariants returned.")
	method("invariant").Params(id("err").Error()).Error().Block(
		fail(jen.Qual("strings", "TrimPrefix").Call(id("err").Dot("Error").Call(), l().Dot("machine").Op("+").Lit(": ")), false),
	)
	f.Comment("reach returns an error unless configuration c is reachable from an initial")
	f.Comment("configuration under the table.")
	method("reach").Params(id("c").Index().Uint8()).Error().Block(
		jen.If(l().Dot("reachable").Op("==").Nil().Op("&&").Add(l().Dot("bits")).Op("==").Nil()).Block(jen.Return(jen.Nil())),
		jen.Var().Id("n").Uint32(),
		jen.For(jen.List(id("i"), id("x")).Op(":=").Range().Id("c")).Block(
			id("n").Op("+=").Uint32().Call(id("x").Op("-").Add(fld(id("i"))).Dot("lo")).Op("*").Add(fld(id("i"))).Dot("stride"),
		),
		jen.If(l().Dot("bits").Op("!=").Nil()).Block(
			jen.If(l().Dot("bits").Index(id("n").Op("/").Lit(64)).Op(">>").Parens(id("n").Op("%").Lit(64)).Op("&").Lit(1).Op("!=").Lit(0)).Block(jen.Return(jen.Nil())),
		).Else().If(jen.List(id("_"), id("ok")).Op(":=").Qual("slices", "BinarySearch").Call(l().Dot("reachable"), id("n")), id("ok")).Block(
			jen.Return(jen.Nil()),
		),
		jen.Var().Id("b").Index().Byte(),
		jen.For(jen.List(id("i"), id("x")).Op(":=").Range().Id("c")).Block(
			id("b").Op("=").Append(id("b"), jen.LitRune(' ')),
			id("b").Op("=").Add(l().Dot("appendField").Call(id("b"), id("i"), id("x"))),
		),
		fail(lit("unreachable: no run of the table from an initial configuration reaches").Op("+").String().Call(id("b")), false),
	)
}

// snapshotReach is how a machine's generated code holds its reachable
// configurations.
type snapshotReach struct {
	space *Space
	list  []uint32 // sorted configuration numbers, or nil
	bits  []uint64 // a bitset over the configuration numbers, or nil
	count int      // the number of reachable configurations
}

// reachableSet returns the reachable configurations of m in the representation
// that takes less room: a sorted list of their numbers while it is at most an
// eighth of the space, else a bitset; neither when every configuration is
// reachable. The numbers are those of Space.Encode.
func reachableSet(pkg *Package, m *Machine) (snapshotReach, error) {
	g, err := Explore(pkg, m)
	if err != nil {
		return snapshotReach{}, err
	}
	n := g.Space.Len()
	if len(g.Order) == n {
		return snapshotReach{space: g.Space, count: n}, nil
	}
	if 32*len(g.Order) <= n {
		list := make([]uint32, len(g.Order))
		for i, id := range g.Order {
			list[i] = uint32(id)
		}
		slices.Sort(list)
		return snapshotReach{space: g.Space, list: list, count: len(list)}, nil
	}
	bits := make([]uint64, (n+63)/64)
	for _, id := range g.Order {
		bits[id/64] |= 1 << (id % 64)
	}
	return snapshotReach{space: g.Space, bits: bits, count: len(g.Order)}, nil
}

func snapshotVar(m *Machine) string  { return unexport(m.Name) + "Snapshot" }
func reachableVar(m *Machine) string { return unexport(m.Name) + "Reachable" }
func snapshotArray(m *Machine) *jen.Statement {
	return jen.Index(jen.Lit(1 + len(m.Vars))).Uint8()
}

// snapshots writes the snapshot methods of the machine and the table they use:
//
//	var connSnapshot = snapshotLayout{machine: "conn", header: [9]byte{...}, fields: ..., reachable: connReachable[:]}
//	var connReachable = [...]uint32{...}
//	func (m *Conn) AppendBinary(b []byte) ([]byte, error)
//	func (m *Conn) MarshalBinary() ([]byte, error)
//	func (m *Conn) UnmarshalBinary(data []byte) error
//	func (m *Conn) AppendText(b []byte) ([]byte, error)
//	func (m *Conn) MarshalText() ([]byte, error)
//	func (m *Conn) UnmarshalText(text []byte) error
func (g *goMachine) snapshots() {
	m, f, reach := g.m, g.f, g.reach
	id, lit := jen.Id, jen.Lit
	name := Export(m.Name)
	layout := snapshotVar(m)
	sp := reach.space
	header := snapshotHeader(m)
	size := snapshotHeaderLen + 1 + len(m.Vars)

	f.Commentf("%s describes the configurations of the %s machine for its snapshots.", layout, m.Name)
	f.Var().Id(layout).Op("=").Id("snapshotLayout").ValuesFunc(func(v *jen.Group) {
		v.Line().Id("machine").Op(":").Lit(m.Name)
		v.Line().Id("header").Op(":").Index(lit(snapshotHeaderLen)).Byte().ValuesFunc(func(h *jen.Group) {
			for _, x := range header {
				h.Op(fmt.Sprintf("0x%02x", x))
			}
		})
		v.Line().Id("fields").Op(":").Index().Id("snapshotField").ValuesFunc(func(fs *jen.Group) {
			var states []jen.Code
			for _, s := range m.States {
				states = append(states, lit(s.Name))
			}
			fs.Line().Values(id("name").Op(":").Lit("state"), id("values").Op(":").Index().String().Values(states...), id("hi").Op(":").Lit(len(m.States)-1), id("stride").Op(":").Lit(sp.NVals))
			for i, x := range m.Vars {
				items := []jen.Code{id("name").Op(":").Lit(x.Name)}
				switch x.Kind {
				case KindBool:
					items = append(items, id("values").Op(":").Id("snapshotBools"))
				case KindEnum:
					var vals []jen.Code
					for _, n := range x.Values {
						vals = append(vals, lit(n.Name))
					}
					items = append(items, id("values").Op(":").Index().String().Values(vals...))
				default:
					if x.Min != 0 {
						items = append(items, id("lo").Op(":").Lit(x.Min))
					}
				}
				items = append(items, id("hi").Op(":").Lit(x.Max), id("stride").Op(":").Lit(sp.strides[i]))
				fs.Line().Values(items...)
			}
			fs.Line()
		})
		switch {
		case reach.list != nil:
			v.Line().Id("reachable").Op(":").Id(reachableVar(m)).Index(jen.Op(":"))
		case reach.bits != nil:
			v.Line().Id("bits").Op(":").Id(reachableVar(m)).Index(jen.Op(":"))
		}
		v.Line()
	})
	const perLine = 12
	switch {
	case reach.list != nil:
		f.Commentf("%s holds the numbers of the %d configurations of the %s", reachableVar(m), len(reach.list), m.Name)
		f.Comment("machine that are reachable from an initial one, sorted. The number of a")
		f.Comment("configuration is the sum of its fields' values (less their lo) times their")
		f.Comment("strides.")
		f.Var().Id(reachableVar(m)).Op("=").Index(jen.Op("...")).Uint32().ValuesFunc(func(v *jen.Group) {
			for i, x := range reach.list {
				if i%perLine == 0 {
					v.Line().Lit(int(x))
				} else {
					v.Lit(int(x))
				}
			}
			v.Line()
		})
	case reach.bits != nil:
		f.Commentf("%s is the set of the %d configurations of the %s", reachableVar(m), reach.count, m.Name)
		f.Comment("machine that are reachable from an initial one: bit n is set for configuration")
		f.Comment("n. The number of a configuration is the sum of its fields' values (less their")
		f.Comment("lo) times their strides.")
		f.Var().Id(reachableVar(m)).Op("=").Index(jen.Op("...")).Uint64().ValuesFunc(func(v *jen.Group) {
			for i, x := range reach.bits {
				w := jen.Op(fmt.Sprintf("0x%x", x))
				if i%(perLine/2) == 0 {
					v.Line().Add(w)
				} else {
					v.Add(w)
				}
			}
			v.Line()
		})
	}

	recv := jen.Params(id("m").Op("*").Id(name))
	f.Comment("snapshot returns the configuration as a snapshot holds it: the state, then the")
	f.Comment("variables in declaration order, one byte each.")
	f.Func().Add(recv).Id("snapshot").Params().Add(snapshotArray(m)).Block(
		jen.Return(snapshotArray(m).ValuesFunc(func(v *jen.Group) {
			v.Uint8().Call(id("m").Dot("state"))
			for i, x := range m.Vars {
				field := id("m").Dot("vars").Dot(varField(m, i))
				switch x.Kind {
				case KindBool:
					v.Id("snapshotBool").Call(field)
				case KindEnum:
					v.Uint8().Call(field)
				default:
					v.Add(field)
				}
			}
		})),
	)
	switch {
	case reach.list == nil && reach.bits == nil && len(m.Invariants) == 0:
		f.Comment("restore sets configuration c, whose fields are in range: every such")
		f.Comment("configuration is reachable.")
	case reach.list == nil && reach.bits == nil:
		f.Comment("restore sets configuration c, whose fields are in range, if it satisfies the")
		f.Comment("invariants (every such configuration is reachable); otherwise it returns the")
		f.Comment("error and leaves m as it is.")
	default:
		f.Comment("restore sets configuration c, whose fields are in range, if it satisfies the")
		f.Comment("invariants and is reachable; otherwise it returns the error and leaves m as it is.")
	}
	f.Func().Add(recv).Id("restore").Params(id("c").Op("*").Add(snapshotArray(m))).Error().BlockFunc(func(b *jen.Group) {
		fields := []jen.Code{id("state").Op(":").Id(stateType(m)).Call(id("c").Index(lit(0)))}
		if len(m.Vars) > 0 {
			fields = append(fields, id("vars").Op(":").Id(varsType(m)).ValuesFunc(func(v *jen.Group) {
				for i, x := range m.Vars {
					c := id("c").Index(lit(i + 1))
					var val jen.Code
					switch x.Kind {
					case KindBool:
						val = jen.Add(c).Op("!=").Lit(0)
					case KindEnum:
						val = id(varEnumType(m, i)).Call(c)
					default:
						val = c
					}
					v.Id(varField(m, i)).Op(":").Add(val)
				}
			}))
		}
		b.Id("r").Op(":=").Id(name).Values(fields...)
		if len(m.Invariants) > 0 {
			b.If(id("err").Op(":=").Id("r").Dot("CheckInvariants").Call(), id("err").Op("!=").Nil()).Block(
				jen.Return(id(layout).Dot("invariant").Call(id("err"))),
			)
		}
		if reach.list != nil || reach.bits != nil {
			b.If(id("err").Op(":=").Id(layout).Dot("reach").Call(id("c").Index(jen.Op(":"))), id("err").Op("!=").Nil()).Block(
				jen.Return(id("err")),
			)
		}
		b.Op("*").Id("m").Op("=").Id("r")
		b.Return(jen.Nil())
	})

	initial := make([]int, len(m.Vars))
	for i, x := range m.Vars {
		initial[i] = x.Initial
	}
	f.Commentf("AppendBinary appends the binary snapshot of the machine's configuration to b: a")
	f.Comment("9-byte header (the format version 1 and the fingerprints of the machine's name")
	f.Comment("and of its table), then one byte for the state and one for each variable in")
	f.Comment("declaration order, options included. It implements encoding.BinaryAppender;")
	f.Comment("the error is always nil, and with room in b it does not allocate.")
	f.Func().Add(recv).Id("AppendBinary").Params(id("b").Index().Byte()).Params(jen.Index().Byte(), jen.Error()).Block(
		id("c").Op(":=").Id("m").Dot("snapshot").Call(),
		id("b").Op("=").Append(id("b"), id(layout).Dot("header").Index(jen.Op(":")).Op("...")),
		jen.Return(jen.Append(id("b"), id("c").Index(jen.Op(":")).Op("...")), jen.Nil()),
	)
	f.Commentf("MarshalBinary returns the binary snapshot of the machine's configuration, %d", size)
	f.Comment("bytes (see AppendBinary). It implements encoding.BinaryMarshaler.")
	f.Func().Add(recv).Id("MarshalBinary").Params().Params(jen.Index().Byte(), jen.Error()).Block(
		jen.Return(id("m").Dot("AppendBinary").Call(jen.Make(jen.Index().Byte(), lit(0), lit(size)))),
	)
	f.Comment("UnmarshalBinary restores a configuration saved by MarshalBinary or AppendBinary.")
	f.Comment("It implements encoding.BinaryUnmarshaler. It returns a *SnapshotError, and")
	f.Comment("leaves the machine unchanged, for a snapshot of another machine, format or")
	f.Comment("version of the table, of the wrong length, with a state or value out of")
	f.Comment("range, or of a configuration that breaks an invariant or that the table does")
	f.Comment("not reach from an initial configuration. It does not allocate on success.")
	f.Func().Add(recv).Id("UnmarshalBinary").Params(id("data").Index().Byte()).Error().Block(
		jen.Var().Id("c").Add(snapshotArray(m)),
		jen.If(id("err").Op(":=").Id(layout).Dot("decodeBinary").Call(id("data"), id("c").Index(jen.Op(":"))), id("err").Op("!=").Nil()).Block(
			jen.Return(id("err")),
		),
		jen.Return(id("m").Dot("restore").Call(jen.Op("&").Id("c"))),
	)
	f.Comment("AppendText appends the text snapshot of the machine's configuration to b: the")
	f.Comment("machine's name, the format version v1, then name=value for the state and for")
	f.Comment("each variable in declaration order, options included, separated by spaces.")
	f.Comment("For the initial configuration with the default options:")
	f.Comment("")
	f.Comment("\t" + snapshotText(m, m.Initial, initial))
	f.Comment("")
	f.Comment("It implements encoding.TextAppender; the error is always nil, and with room")
	f.Comment("in b it does not allocate.")
	f.Func().Add(recv).Id("AppendText").Params(id("b").Index().Byte()).Params(jen.Index().Byte(), jen.Error()).Block(
		id("c").Op(":=").Id("m").Dot("snapshot").Call(),
		jen.Return(id(layout).Dot("appendText").Call(id("b"), id("c").Index(jen.Op(":"))), jen.Nil()),
	)
	f.Commentf("MarshalText returns the text snapshot of the machine's configuration, at most %d", snapshotTextMax(m))
	f.Comment("bytes (see AppendText). It implements encoding.TextMarshaler.")
	f.Func().Add(recv).Id("MarshalText").Params().Params(jen.Index().Byte(), jen.Error()).Block(
		jen.Return(id("m").Dot("AppendText").Call(jen.Make(jen.Index().Byte(), lit(0), lit(snapshotTextMax(m))))),
	)
	f.Comment("UnmarshalText restores a configuration from its text snapshot, as MarshalText")
	f.Comment("writes it; the name=value fields may come in any order, separated by any white")
	f.Comment("space, and every one must be given once. It implements encoding.TextUnmarshaler.")
	f.Comment("It returns a *SnapshotError, and leaves the machine unchanged, for the text of")
	f.Comment("another machine or format, an unknown, repeated or missing field, an unknown or")
	f.Comment("out-of-range value, or a configuration that breaks an invariant or that the")
	f.Comment("table does not reach from an initial configuration. It does not allocate on")
	f.Comment("success.")
	f.Func().Add(recv).Id("UnmarshalText").Params(id("text").Index().Byte()).Error().Block(
		jen.Var().Id("c").Add(snapshotArray(m)),
		jen.If(id("err").Op(":=").Id(layout).Dot("decodeText").Call(id("text"), id("c").Index(jen.Op(":"))), id("err").Op("!=").Nil()).Block(
			jen.Return(id("err")),
		),
		jen.Return(id("m").Dot("restore").Call(jen.Op("&").Id("c"))),
	)
}
