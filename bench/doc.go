// Package bench measures the machines fsmgen generates against
// github.com/looplab/fsm, the common general-purpose Go FSM library, on the same
// table. It is its own module so that benchmark-only dependencies stay out of
// fsmkernel's go.mod.
//
// The comparison is fair by construction:
//
//  1. Both machines come from the same bytes, lifecycle.Spec: the generated Go in
//     lifecycle/, and the looplab/fsm machine built from the generator's IR by
//     NewLooplab.
//  2. Both are driven by the same precomputed walk (Walk), one transition decision
//     per event, and both hand back the ordered actions of the row that answered.
//  3. A differential test checks that both end in the same state, with the same
//     actions and the same rejections, after every event of the walk and in every
//     cell of the table.
//
// See README.md for how to run the benchmarks and read their output.
package bench
