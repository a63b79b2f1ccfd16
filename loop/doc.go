// Package loop is fsmkernel's runtime: event loops, each one goroutine over
// epoll (Linux) or kqueue (darwin, freebsd), driving stream channels and
// listeners whose every lifecycle decision comes from the machines generated in
// package statemachine. It is for servers and clients that want the loop's
// guarantees: a readable notification whose read says EAGAIN, an EBADF from a
// descriptor closed behind the library's back, EMFILE from accept, a panicking
// handler or a failing poller are named cells of a table, never a crash or a
// wedged loop.
//
// The runtime turns kernel results into events (through the generated Classify
// functions of package sockets), calls the machine, and performs the returned
// actions in order, each by its one method of the machine's generated Performer
// interface. It decides nothing itself.
//
// Doc comments and Counters cite the kernel's behaviour codes: R1, readiness
// that finds nothing is counted and kept armed; R2, OnReadComplete once per
// read cycle that delivered, never for one that did not; R3, an EOF hint
// proves nothing, only the read's EOF ends the input; R4, EINTR retries and
// other errors fail the channel; D2, a descriptor number the kernel called
// invalid is never touched again, not even closed; D3, events of a
// registration that ended are dropped; D4, every descriptor is closed exactly
// once, and close's result is final. docs/design.md in the repository defines
// each precisely and says where it is proven and tested.
//
// The caller's duties:
//
//  1. Create a Group (or a single Loop with New) and keep it until Shutdown or
//     Close returns; every Loop method is safe from any goroutine.
//  2. Give each channel a Handler. Its callbacks run on the channel's loop, one at
//     a time; the buffer passed to OnRead is valid only during the call.
//  3. Write and Close a Channel from any goroutine, Send and SendCopy from its
//     callbacks. Every write's done is called exactly once, on every path: nil
//     when written, an error for a write the channel refused or still held when
//     it closed. Bytes accepted count against the channel's watermarks before
//     the loop decides anything else on it.
//  4. Stop with Shutdown(ctx) (graceful: every write accepted before it goes
//     out; when ctx ends first the close is forced and Shutdown says so with
//     ErrForced) or Close (forced). A loop that failed ends stopped too; Wait
//     returns its cause.
//  5. A sockets.FD passed to Register or Listen is the loop's from that call,
//     whether it succeeds or not (on an error the loop has closed it): don't
//     use or close it yourself.
//  6. Leave CrashOnInvalidDescriptor and RepanicHandlerPanics off outside
//     tests and debugging: they turn a fault contained to one channel or
//     listener into a panic of the process or a failed loop.
package loop
