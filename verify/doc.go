// Package verify proves what the state tables promise and checks the generated
// code against them. It is for the project's CI and for users of fsmgen on their
// own tables.
//
//   - CheckMachine and CheckProduct explore every reachable configuration of a
//     machine, or of a product such as an event loop with N channels, and check
//     totality, determinism, invariants, action multiplicities and order, the
//     obligations (response properties, spec-format's "Obligations"), that
//     nothing happens after a terminal state, that synchronised events are
//     accepted, that a terminal configuration stays reachable, and that the loop
//     outlives its channels; each violation comes with its shortest trace.
//   - Reference runs a table through github.com/looplab/fsm, an interpreter that
//     shares nothing with the generated code; CheckAgainstReference compares a
//     generated machine with it on random event sequences (pgregory.net/rapid).
//
// The caller's duties when adding a machine:
//
//  1. Declare it in spec/ and add the file to the //go:generate lines of
//     statemachine/doc.go and of this package (doc.go), then run make generate.
//  2. Run fsmgen check (make run): every search must print ok.
//  3. The generated <machine>_prop_gen_test.go runs with go test ./verify.
package verify

//go:generate go run ../cmd/fsmgen proptest -import github.com/fsmkernel/fsmkernel/statemachine ../spec/outcomes.yaml ../spec/errno.yaml ../spec/eventloop.yaml ../spec/channel.yaml ../spec/listener.yaml
