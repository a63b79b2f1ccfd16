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
// actions in order with one switch per machine. It decides nothing itself.
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
package loop
