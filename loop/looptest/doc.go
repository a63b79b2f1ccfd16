// Package looptest provides test support for servers and clients built on
// package loop, as net/http/httptest does for net/http. It is for tests: the
// loop's own, and yours of a Handler that must survive what the kernel can
// answer. Package loop carries no test machinery; everything here works
// through the hooks every loop has (Options.Syscalls and Options.NewPoller).
//
// An Injector sits in front of the kernel: it wraps the sockets.Syscalls of
// the loops built from its Options and the loop.Poller each of them creates,
// and by rule turns calls into the failures the runtime must survive
// (spurious readiness, EOF hints with nothing to read, EAGAIN, EINTR, short
// reads and writes, ECONNRESET, EPIPE, EBADF from a descriptor closed behind
// the runtime's back, EMFILE on accept, a failing poller). It also counts the
// calls the runtime makes on a number after it was closed or found invalid,
// which must be none. It works on Linux, darwin and freebsd.
//
// The caller's duties:
//
//  1. Create an Injector with NewInjector(seed, rules...). The seed draws
//     every probabilistic choice of its rules, in the order calls reach the
//     injector; the kernel's timing and, with several loops, their
//     scheduling decide that order, so a seed does not replay a run exactly.
//  2. Build every loop under test from inj.Options(base): a Group or Loop made
//     from other Options bypasses the injector. Several loops may share one
//     Injector.
//  3. Add rules, Clear them, or invalidate a descriptor with CloseBehind or
//     Dup2DevNull at any time, from any goroutine; aim a rule at one
//     descriptor with Rule.FD.
//  4. After the traffic, check what you expect: Injected and Counts for the
//     faults that fired (so that a test does not pass vacuously), and
//     CallsOnClosed, which must be 0 (FirstCallOnClosed tells where the first
//     one came from).
//  5. Stop the loops (Shutdown or Close) before the test ends, as for any
//     loop; the Injector holds no descriptor of its own.
package looptest
