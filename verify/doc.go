// Package verify proves what the state tables promise and checks the generated
// code against them. It is for the project's CI and for users of fsmgen on their
// own tables; fsmgen check and fsmgen generate call it.
//
//   - CheckMachine and CheckProduct explore every reachable configuration of a
//     machine, or of a product such as an event loop with N channels, and check
//     totality, determinism, invariants, action multiplicities and order, the
//     obligations (response properties, spec-format's "Obligations"), that
//     nothing happens after a terminal state, that synchronised events are
//     accepted, that a terminal configuration stays reachable, and that the loop
//     outlives its channels; each violation comes with its shortest trace.
//   - Violation.Script writes a violation's trace as a behaviour script that
//     fails on the tables it was found in and passes once the property holds;
//     RunScript runs behaviour scripts (the format of the kernel's, with step
//     and "want NAME holds PROPERTY") against the tables, without generated
//     code. fsmgen check -counterexamples and -scripts call them.
//   - Reference runs a table through github.com/looplab/fsm, an interpreter that
//     shares nothing with the generated code; CheckAgainstReference compares a
//     generated machine with it on random event sequences (pgregory.net/rapid).
//
// The kernel's own tables are proven here (TestKernelTables). docs/design.md in
// the repository defines the kernel's behaviour codes (R1 to R4, D1 to D4) and
// names the invariants, obligations and mutation tests behind each one the
// tables prove.
//
// The duties of a user of this package:
//
//  1. Load every spec file of one package together, with LoadSpecs (or
//     gen.Load): outcome enumerations are shared across files, and a product
//     needs the files of its machines. A load error is a gen.Diagnostics
//     holding every problem with its position; nothing is checked then.
//  2. Check each machine alone with CheckMachine and each product with
//     CheckProduct. A machine's invariants and obligations are proven on the
//     machine alone, for every combination of its options, and hold in every
//     product; a product's synchronisations, its outlives property and its own
//     obligations only on the product, for the instance counts of
//     Options.Counts (default: the spec's) and the options the product fixes.
//  3. Trust a Result only when OK reports true. Every Violation holds its
//     shortest trace from the start; the properties in Unchecked are neither
//     proven nor violated, because a violation cut the search short: fix the
//     violations and search again. A non-nil error (a machine not in the
//     package, too many configurations for the checker, a search past
//     Options.MaxStates) proves nothing.
//  4. After changing a loaded machine's rows in memory, call gen.RebuildCells
//     before checking it; it does not validate the change.
//  5. Compare generated code with the tables through the adapters fsmgen
//     proptest generates. A System written by hand must number events,
//     outcomes, actions and variables as the IR does (the order of gen.Machine's
//     slices), report a *RejectedError as rejected rather than as an error, and
//     check its invariants in CheckInvariants. Call CheckAgainstReference
//     inside rapid.Check, once per machine; newSystem gets every variable's
//     value, options drawn within their domains. A run draws at most MaxSteps
//     events.
package verify

//go:generate go run ../cmd/fsmgen proptest -import github.com/fsmkernel/fsmkernel/statemachine ../spec/outcomes.yaml ../spec/errno.yaml ../spec/eventloop.yaml ../spec/channel.yaml ../spec/listener.yaml
