// Package sockets owns the non-blocking stream sockets an fsmkernel event loop
// drives: TCP (IPv4 and IPv6), Unix stream sockets and AF_VSOCK. It is for the
// runtime (loop/) and for tests that need real descriptors; applications use
// the loop's API instead.
//
// It performs and never decides. Every system call goes through one Syscalls
// value, so a test or the fault injector can replace or precede any kernel
// result. The data-path operations (Read, Write, Writev, Accept, Connect,
// ConnectResult, Shutdown) return the kernel's result as it came, a raw unix.Errno and no
// wrapping, ready for the generated Classify functions of this package to turn
// into an outcome of the tables in spec/. Setup operations (Listen, Open, Dial,
// Adopt, Close, options, addresses) wrap errors with os.NewSyscallError naming
// the system call.
//
// Every descriptor here is owned by exactly one *FD: created by the kernel
// non-blocking and close-on-exec, or adopted by duplicating the caller's
// descriptor (F_DUPFD_CLOEXEC), so the caller may close its copy at any time.
// This ownership is what docs/design.md in the repository calls D1; comments
// here cite two more of its codes: D2, a number the kernel called invalid
// (EBADF) is never touched again, not even closed; D4, a descriptor is closed
// exactly once, and close's result, EINTR included, is final.
//
// The caller's duties:
//
//  1. Create descriptors with Listen, Dial, Adopt or AdoptFD, passing Options
//     (nil for DefaultOptions); set Options.Syscalls to inject results.
//  2. To connect, Open a socket, register it with the poller, then Connect
//     (or Dial, which opens and connects). After EINPROGRESS, wait until the
//     descriptor is writable, then call ConnectResult once: nil means
//     connected, ENOTCONN means the readiness was spurious and the connect is
//     still in progress, any other errno is the connect's failure.
//  3. Use each FD from one goroutine at a time (the loop that owns it). Close
//     may race with other Close calls but not with an operation in progress:
//     once close(2) runs, the number may be reused by another open.
//  4. Pass Read a non-empty buffer (a zero-length read returns 0, which reads as
//     EOF) and Writev at most MaxIovecs buffers; compare the count written with
//     the bytes of the buffers passed to tell a short write.
//  5. Hand every raw result to the generated Classify function of its operation
//     and let the machine decide; never retry or drop an errno here.
//  6. End every FD exactly once: Close, or Forget when the kernel said EBADF
//     (the number was invalidated outside this process's ownership and may
//     already name someone else's descriptor, so it must never be closed).
//  7. For a listener made by Listen on a Unix path, Close removes the path;
//     remove a stale path yourself before Listen, which fails on it with
//     EADDRINUSE rather than delete a file it did not create.
//  8. Don't call (*os.File).Fd or SetBlocking on a copy you passed to Adopt:
//     O_NONBLOCK belongs to the open file description both copies share, and
//     those calls make it blocking, which would block the loop. Close your copy.
package sockets

//go:generate go run ../cmd/fsmgen classify -import github.com/fsmkernel/fsmkernel/statemachine -o . -pkg sockets ../spec/outcomes.yaml ../spec/errno.yaml ../spec/eventloop.yaml ../spec/channel.yaml ../spec/listener.yaml
