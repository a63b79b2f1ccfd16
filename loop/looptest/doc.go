// Package looptest provides test support for servers and clients built on
// package loop, as net/http/httptest does for net/http. It is for tests: the
// loop's own, and yours of a Handler that must survive what the kernel can
// answer. Package loop carries no test machinery; everything here works
// through the hooks every loop has (Options.Syscalls, Options.NewPoller and
// Options.Clock). It works on Linux, darwin and freebsd.
//
// # The simulator
//
// Simulate runs your test against a simulated kernel: in-memory stream
// sockets (TCP, Unix and vsock addresses), listeners and pollers with Linux's
// answers (lowest-free descriptor numbers, epoll's registrations by open
// file, level-triggered readiness, resets reported once), simulated peers and
// a virtual clock. The loops run on it unchanged, one wakeup at a time when
// the simulation gives them a turn, so a seed replays a run exactly: the
// readiness order and batching, which loop runs next, and the faults of a
// Profile (spurious readiness, EOF hints with nothing to read, readiness for
// an interest already changed, short reads and writes, EINTR, resets, EBADF
// from a number closed behind the runtime's back and the number's reuse by
// another owner, EMFILE on accept, a failing poller) are all drawn from it.
//
// The simulated kernel checks the descriptor contracts on every call: no
// call on a number after a call told the runtime it was invalid, no close of
// a number the runtime does not own once it was told so, and, when Simulate's
// function returns, every loop stopped and every descriptor the runtime owned
// closed or forgotten. A broken contract fails the test with the seed, the
// contract's name and the last lines of the run's trace. The descriptor
// contracts are named D2 (a number the runtime was told is invalid is never
// used again) and D4 (a closed number is not used again; every descriptor is
// closed or forgotten by the end), after the codes docs/design.md in the
// repository defines; a loop still running at the end is a termination
// violation. docs/simulation.md lists the contracts the kernel's own swarm
// adds.
//
//	func TestEchoSurvivesTheKernel(t *testing.T) {
//		looptest.Simulate(t, 1, func(s *looptest.Sim) {
//			g := loop.NewGroup(2, s.Options(nil))
//			ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 80}, accepted, nil)
//			if err != nil {
//				t.Fatal(err)
//			}
//			s.SetProfile(looptest.Profile{Short: 3000, EAGAIN: 2000, Spurious: 2000})
//			p, _ := s.Dial(ln.Addr())
//			p.Write([]byte("hello"))
//			s.RunUntil(func() bool { p.Read(0); return len(p.Received()) == 5 }, time.Second)
//			done := false
//			s.Go(func() { g.Shutdown(context.Background()); done = true })
//			s.RunUntil(func() bool { return done }, time.Minute)
//		})
//	}
//
// TestExampleEchoUnderSimulation in this package's tests is that test, run.
//
// The caller's duties with a Sim:
//
//  1. Build every loop under test from s.Options(base), inside Simulate's
//     function; a loop built otherwise uses the real kernel.
//  2. Drive the loops: Step gives one turn, Settle turns until nothing is
//     ready, Advance and RunUntil also move the virtual clock. Nothing runs
//     while your function does its own work.
//  3. Call the loops' non-blocking methods directly (Channel.Write and Close,
//     Loop.Execute) and the blocking ones (Shutdown, Close and Wait of a Loop
//     or Group, Group.Dial, a Conn's Read and Write) through s.Go, then drive
//     until they return.
//  4. Stop every loop before your function returns. Check your own contracts
//     with s.Violate, so that they fail the run as the simulator's do.
//
// Tables checks that the transitions a runtime records (Options.Trace) are a
// legal path of the generated tables: that the runtime decided nothing its
// tables did not.
//
// The caller's duties with Tables:
//
//  1. Use one Tables per Group, or per Loop made with New: an event loop's id
//     is its index in its group.
//  2. Give Check every step the Trace of every loop under test receives, in
//     the order each loop records them; Check is safe for concurrent use.
//  3. Declare, with Channel or ChannelDefaults and before their first step is
//     checked, the options of channels whose loop.ChannelOptions change
//     AutoRead, HalfClosure, NoBackpressure, CrashOnInvalidDescriptor or
//     RepanicHandlerPanics (a loop.Conn's do); to know a channel's id first,
//     record the steps and check them afterwards.
//  4. Fail on the first error Check returns (the later steps of that instance
//     are not checked), and check Steps, so that a test that received no steps
//     does not pass.
//
// # The injector
//
// An Injector sits in front of the real kernel: it wraps the sockets.Syscalls
// of the loops built from its Options and the loop.Poller each of them
// creates, and by rule turns calls into the failures the runtime must
// survive. It also counts the calls the runtime makes on a number after it
// was closed or found invalid, which must be none. Its runs are not
// reproducible (the kernel's timing orders the calls); use it to check what
// the simulator cannot show, the real kernel's own answers.
//
// The caller's duties with an Injector:
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
