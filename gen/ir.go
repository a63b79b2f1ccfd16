package gen

// The IR is what the validator produces and every emitter, the model checker and
// the property tests consume. It is plain data: sorted slices of structs indexed by
// small integers, no maps, no jennifer, no positions beyond what error messages need.
// Index i of Machine.States is the value of the generated State constant i, and so on
// for events, actions, outcome values and enum values, so emitted code, the checker
// and the interpreter in verify/ agree on numbering by construction.

// Package is the result of loading one or more spec files that are generated into
// one Go package. Outcome enumerations are shared by the machines of a package.
type Package struct {
	Outcomes    []*OutcomeEnum // declaration order across files
	Machines    []*Machine     // declaration order across files
	Classifiers []*Classifier  // declaration order across files
	Products    []*Product     // declaration order across files
}

// Product declares how machines run together, as the runtime composes them: an
// event loop and the channels registered on it. The model checker explores the
// product; the synchronisations are the only coupling between components.
type Product struct {
	Name        string
	Description string
	Components  []Component
	Sync        []Sync
	// Outlives says component Outlives.Component reaches a terminal state only when
	// every instance of the Others components is terminal or still initial.
	Outlives *Outlives
	// Requests are events the environment delivers to one component on behalf of
	// an instance of another, which becomes the sender (a channel registering with
	// its loop).
	Requests []Request
	// Obligations are response properties whose terms name actions, events and
	// configurations of several components (Term.Comp).
	Obligations []Obligation
	Pos         Pos
}

// Request lets the environment deliver Event to component To on behalf of an
// instance of From that is in one of the States; a rejection delivers OnReject
// back to it.
type Request struct {
	From, To        int
	States          []int // states of From's machine
	Event, Outcome  int
	OnReject        int // event of From's machine, or -1
	OnRejectOutcome int
	Pos             Pos
}

// Component is a kind of machine in a product with its number of instances.
type Component struct {
	Name    string
	Machine int // index into Package.Machines
	Count   int
	// Internal marks the events only synchronisation delivers (indexed by event);
	// the environment never fires them.
	Internal []bool
	// Options fixes option variables for the search (indexed by variable; -1: any
	// value of the domain).
	Options []int
}

// SyncSender is the Sync.To value that delivers to the component that sent the
// event being answered.
const SyncSender = -1

// Sync delivers an event to other components when a component performs an action.
type Sync struct {
	From      int    // component index
	Action    int    // action index of From's machine
	To        int    // component index (every instance), or SyncSender
	Event     int    // event index of the target machine
	EventName string // for rules to the sender, whose machine is known only then
	Outcome   int    // outcome value, 0 for events without outcomes
	// OnReject is the event of the From machine delivered back to the sender when
	// the target's table rejects Event (as the runtime returns an error to the
	// caller), or -1: then a rejection is a violation.
	OnReject        int
	OnRejectOutcome int
	Pos             Pos
}

// Outlives is the ordering property of a product.
type Outlives struct {
	Component int
	Others    []int
}

// Classifier maps the result of one kernel operation to a value of an outcome
// enumeration: success, an optional zero result, errno by errno, and a default.
// Errnos are named as in golang.org/x/sys/unix; Linux and BSD lists hold the
// errnos classified on that family only.
type Classifier struct {
	Name        string
	Description string
	Outcome     int // index into Package.Outcomes
	Success     int // outcome value of a successful call (result > 0, or >= 0 without Zero)
	Zero        int // outcome value of a zero result, or -1
	Default     int // outcome value of any errno not listed
	Errors      []ErrnoOutcome
	Linux       []ErrnoOutcome
	BSD         []ErrnoOutcome
	Pos         Pos
}

// ErrnoOutcome is one errno and the outcome value it maps to.
type ErrnoOutcome struct {
	Errno   string
	Outcome int
	Why     string
}

// Pos is a source position: file, 1-based line and column.
type Pos struct {
	File string
	Line int
	Col  int
}

// OutcomeEnum is a closed enumeration of the results of one kernel operation,
// carried by events (e.g. "readResult" carried by "readable").
type OutcomeEnum struct {
	Name        string
	Description string
	Values      []Named
	Pos         Pos
}

// Named is a name with its description.
type Named struct {
	Name        string
	Description string
}

// Machine is one state machine.
type Machine struct {
	Name        string
	Description string
	File        string
	Pos         Pos
	States      []State
	Events      []Event
	Actions     []Action
	Vars        []Var
	Rows        []Row // declaration order; Cells refer to rows by index
	Invariants  []Invariant
	Obligations []Obligation
	Initial     int

	// Cells maps each (state, event, outcome) triple to the rows that can answer it,
	// in declaration order; at most one of them matches any variable valuation
	// (determinism) and at least one does (totality). Index with CellIndex.
	Cells [][]int
	// MaxOutcomes is the stride of the outcome dimension of Cells: the largest
	// number of outcome values carried by any event, or 1.
	MaxOutcomes int
	// MaxActions is the largest number of actions any row performs.
	MaxActions int
}

// CellIndex returns the index into Cells of (state, event, outcome).
func (m *Machine) CellIndex(state, event, outcome int) int {
	return (state*len(m.Events)+event)*m.MaxOutcomes + outcome
}

// NumOutcomes returns how many outcome values event e carries (1 when it carries none:
// the single implicit outcome 0).
func (m *Machine) NumOutcomes(pkg *Package, e int) int {
	if m.Events[e].Outcome < 0 {
		return 1
	}
	return len(pkg.Outcomes[m.Events[e].Outcome].Values)
}

// State is one state of a machine.
type State struct {
	Name        string
	Description string
	Terminal    bool
	Pos         Pos
}

// Event is one input of a machine.
type Event struct {
	Name        string
	Description string
	Outcome     int // index into Package.Outcomes, or -1
	Abnormal    bool
	Pos         Pos
}

// Action is one effect the runtime performs when a row fires.
type Action struct {
	Name        string
	Description string
	Max         int // most times per machine lifetime; 0 means unbounded
	// After is an action that must have occurred since this action's previous
	// occurrence (or since creation) each time this one occurs, or -1. It states
	// "readComplete only after a read in its cycle".
	After int
	// NotAfter lists events after which (from the transition answering them on)
	// this action must never occur: "never closeFD after descriptorInvalid".
	NotAfter []int
	// NotAfterActions lists actions after which (later in the same row, or in any
	// later transition) this action must never occur: "never closeFD after forgetFD".
	NotAfterActions []int
	// With lists actions at least one of which must occur in every transition this
	// one occurs in: "countSpurious with [rearmRead, rearmWrite]" (a spurious
	// readiness keeps its interest armed).
	With []int
	// Effects are constant variable updates that happen whenever the action is
	// performed, after the row's own updates, in the order of the row's actions:
	// bookkeeping that no row can forget ("rearmRead sets rearmDue to false").
	Effects []Update
	Pos     Pos
}

// VarKind is the type of a variable.
type VarKind uint8

const (
	KindBool VarKind = iota
	KindEnum
	KindInt
	// KindState is the pseudo-variable "state", usable in invariants only.
	KindState
)

func (k VarKind) String() string {
	switch k {
	case KindBool:
		return "bool"
	case KindEnum:
		return "enum"
	case KindInt:
		return "int"
	case KindState:
		return "state"
	}
	return "invalid"
}

// Var is a variable of finite domain. Values are encoded as int: bools as 0/1, enums
// as the index of the value, ints as themselves.
type Var struct {
	Name        string
	Description string
	Kind        VarKind
	Values      []Named // enum values
	Min, Max    int     // int range; for bool 0..1; for enum 0..len(Values)-1
	Initial     int
	// Option marks a variable set by the user when the machine is created (a
	// configuration choice such as a policy); any value of its domain may be initial.
	Option bool
}

// Size returns the number of values in the variable's domain.
func (v *Var) Size() int { return v.Max - v.Min + 1 }

// RowKind says how a row answers its cells.
type RowKind uint8

const (
	RowTransition RowKind = iota
	RowIgnore
	RowReject
)

// Row is one line of the transition table after wildcard expansion sets have been
// resolved. A row matches (state, event, outcome, valuation) when all of its sets
// contain the triple and its guard holds.
type Row struct {
	Kind     RowKind
	From     []int // states, sorted
	On       []int // events, sorted
	Outcomes []int // outcome values of the events' enumeration, sorted; nil: all
	Guard    *Expr // nil: true
	To       int   // -1: stay in the current state
	Do       []int // actions in order
	Set      []Update
	Reason   string // reject reason or note, emitted as a comment
	Pos      Pos
}

// Update assigns an expression to a variable.
type Update struct {
	Var   int
	Value *Expr
}

// Invariant is a predicate over state and variables that must hold in every
// reachable configuration.
type Invariant struct {
	Name        string
	Description string
	Expr        *Expr
	Pos         Pos
}

// Obligation is a response property over a machine's run (or, in a product,
// the runs of its components): once an After term occurs, a Then term must
// occur before any Before term does. The run is a sequence of moments: each
// transition is the event it answers, then its actions in order, then the
// configuration it reaches; an event a row rejects is no moment, and an ignored
// one is its event and the unchanged configuration. At an event or an action,
// a Then term discharges a pending obligation, a Before term violates one still
// pending, an After term raises it; at a configuration the order is discharge,
// raise, violate, so that a configuration that raises an obligation it is the
// deadline of violates it at once. The obligation is one bit per machine
// instance: an After term while it is pending changes nothing.
type Obligation struct {
	Name        string
	Description string
	// After raises the obligation; nil: it is raised when the machine is
	// created (in its initial configuration).
	After []Term
	// Then discharges it; nil: nothing does, and the obligation says that no
	// Before term occurs after an After term (an absence).
	Then   []Term
	Before []Term
	Pos    Pos
}

// TermKind says what an obligation's term denotes.
type TermKind uint8

const (
	TermAction TermKind = iota // the action is performed
	TermEvent                  // the event is answered (not rejected), with one of Outcomes
	TermCond                   // the configuration reached satisfies Cond
)

// Term is one item of an obligation's After, Then or Before list.
type Term struct {
	Kind TermKind
	// Comp is the product component whose machine the term names (0 in a
	// machine's own obligations).
	Comp     int
	Action   int   // TermAction
	Event    int   // TermEvent
	Outcomes []int // TermEvent: the outcome values; nil: every one
	Cond     *Expr // TermCond: over the component's state and variables
	Text     string
	Pos      Pos
}

// Op is an expression operator.
type Op uint8

const (
	OpConst Op = iota // Value
	OpVar             // Var (index into Machine.Vars); Var == -1 is the state
	OpNot
	OpNeg
	OpAnd
	OpOr
	OpEq
	OpNe
	OpLt
	OpLe
	OpGt
	OpGe
	OpAdd
	OpSub
)

// Expr is a typed expression tree over the machine's variables.
type Expr struct {
	Op    Op
	Value int // OpConst
	Var   int // OpVar: variable index, or StateVar
	L, R  *Expr
	// Kind is the expression's type; Enum the variable index whose enumeration an
	// enum-typed expression belongs to (for printing constants).
	Kind VarKind
	Enum int
}

// StateVar is the Var index that denotes the machine's current state in invariants.
const StateVar = -1
