// Package gen is fsmgen's compiler: it loads state tables written in YAML
// (docs/spec-format.md in the repository) into one IR, a Package, and emits
// from it the Go machines (EmitGo), the errno classifiers (EmitClassifiers),
// the property tests (EmitPropTests), diagrams (EmitDOT, EmitMermaid) and
// models for the SPIN model checker (EmitPromela, EmitPromelaProduct). The
// model checker that proves the tables is package verify; cmd/fsmgen puts the
// two together, and most users want it rather than this package.
//
// Load parses, resolves and validates: names and types, every (state, event,
// outcome) cell answered exactly once under every valuation of the variables
// its rows read, updates within their domains, abnormal events answered, every
// state reachable, and a terminal state reachable from every reachable
// configuration. Invariants, action constraints, obligations and products are
// resolved here and proven by verify.
//
// The duties of a user of this package:
//
//  1. Give Load every spec file of one generated package at once, each as a
//     Source whose Path is what diagnostics print: outcome enumerations and
//     classifiers are shared by all of them.
//  2. On failure, take the error as a Diagnostics (errors.As) for every
//     problem with its file:line:col; Load returns no Package then.
//  3. Prove the loaded tables with verify.CheckMachine and verify.CheckProduct
//     before emitting code from them: Load does not prove invariants, action
//     constraints, obligations or products. fsmgen generate refuses to write
//     when a check fails.
//  4. Treat a Package as read-only: the emitters, the checker and the
//     interpreter (Machine.Match, Machine.Apply) share its numbering. After
//     changing a machine's rows in memory, call RebuildCells, which does not
//     validate the change.
//  5. Write each file an emitter returns under its name, unchanged, into the
//     directory of the Go package its options name (GoOptions.Package,
//     ClassifyOptions.Package, PropTestOptions.Package): the output is
//     deterministic, and its header records the options' Command. Tell the
//     classifier and property-test emitters the import path of the Go
//     machines emitted from the same Package (ClassifyOptions.Machines,
//     PropTestOptions.Machines), and give PropTestOptions.Specs relative to
//     the tests' directory, where the tests read them at run time.
//  6. Never edit a generated file: change the tables and emit again.
package gen
