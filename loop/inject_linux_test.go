package loop_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
)

func noMisuse(t *testing.T, inj *looptest.Injector) {
	t.Helper()
	if n := inj.CallsOnClosed(); n != 0 {
		t.Errorf("%d calls on descriptor numbers already closed or found invalid", n)
	}
}

// TestInjectSpuriousReadiness: readable and EOF-hint notifications whose read
// says EAGAIN (R1, R3), and EAGAIN on later reads with the data still there,
// are counted and lose no byte.
func TestInjectSpuriousReadiness(t *testing.T) {
	loop.CheckFDs(t)
	inj := looptest.NewInjector(1,
		looptest.Rule{Op: looptest.OpPollerWait, Fault: looptest.FaultSpuriousReadable, Every: 3},
		looptest.Rule{Op: looptest.OpPollerWait, Fault: looptest.FaultSpuriousEOFHint, Every: 4},
		looptest.Rule{Op: looptest.OpRead, Fault: looptest.FaultEAGAIN, Every: 5},
	)
	g := loop.NewGroup(2, inj.Options(nil))
	defer loop.ShutdownGroup(t, g)
	ln := loop.ServeEcho(t, g, loop.Loopback)
	loop.EchoClients(t, ln.Addr(), 4)
	for _, f := range []looptest.Fault{looptest.FaultSpuriousReadable, looptest.FaultSpuriousEOFHint, looptest.FaultEAGAIN} {
		if inj.Injected(f) == 0 {
			t.Errorf("%v never injected", f)
		}
	}
	var spurious uint64
	for _, l := range g.Loops() {
		spurious += l.Counters().SpuriousReadiness.Load()
	}
	if spurious == 0 {
		t.Error("SpuriousReadiness = 0")
	}
	noMisuse(t, inj)
	t.Logf("injected %v; SpuriousReadiness %d", inj.Counts(), spurious)
}

// TestInjectEINTREverywhere: EINTR on read, write, accept, connect and
// epoll_wait, at random, is retried (R4) without loss.
func TestInjectEINTREverywhere(t *testing.T) {
	loop.CheckFDs(t)
	var rules []looptest.Rule
	for _, op := range []looptest.Op{looptest.OpRead, looptest.OpWrite, looptest.OpAccept, looptest.OpConnect, looptest.OpPollerWait} {
		rules = append(rules, looptest.Rule{Op: op, Fault: looptest.FaultEINTR, Probability: 0.3})
	}
	inj := looptest.NewInjector(2, rules...)
	g := loop.NewGroup(2, inj.Options(nil))
	defer loop.ShutdownGroup(t, g)
	ln := loop.ServeEcho(t, g, loop.Loopback)
	loop.EchoClients(t, ln.Addr(), 4)
	// Dials through the injector too: an interrupted connect goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 4; i++ {
		rec := loop.NewRecorder()
		ch, err := g.Dial(ctx, ln.Addr(), rec, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		ch.Write([]byte("ping"), nil)
		loop.WaitData(t, rec, "ping")
		ch.Close()
		loop.WaitFor(t, ch.Closed(), "the dialed channel closing")
	}
	if inj.Injected(looptest.FaultEINTR) == 0 {
		t.Error("EINTR never injected")
	}
	noMisuse(t, inj)
	t.Logf("injected %v", inj.Counts())
}

// TestInjectShortReadsWrites: reads and writes that move part of the bytes keep
// the rest pending; nothing is lost or reordered.
func TestInjectShortReadsWrites(t *testing.T) {
	loop.CheckFDs(t)
	inj := looptest.NewInjector(3,
		looptest.Rule{Op: looptest.OpRead, Fault: looptest.FaultShort, Probability: 0.5},
		looptest.Rule{Op: looptest.OpWrite, Fault: looptest.FaultShort, Probability: 0.5},
	)
	g := loop.NewGroup(2, inj.Options(nil))
	defer loop.ShutdownGroup(t, g)
	ln := loop.ServeEcho(t, g, loop.Loopback)
	loop.EchoClients(t, ln.Addr(), 4)
	if inj.Injected(looptest.FaultShort) == 0 {
		t.Error("no short read or write injected")
	}
	noMisuse(t, inj)
	t.Logf("injected %v", inj.Counts())
}

// TestInjectResetAndBrokenPipe: ECONNRESET on one channel's read and EPIPE on
// another's write close those channels with the error (R4); a third is served.
func TestInjectResetAndBrokenPipe(t *testing.T) {
	loop.CheckFDs(t)
	inj := looptest.NewInjector(4)
	g := loop.NewGroup(1, inj.Options(nil))
	defer loop.ShutdownGroup(t, g)
	ln, active := loop.ServeActive(t, g)
	resetC, resetCh := loop.Connect(t, ln.Addr(), active)
	pipeC, pipeCh := loop.Connect(t, ln.Addr(), active)
	healthy, _ := loop.Connect(t, ln.Addr(), active)
	inj.Add(
		looptest.Rule{Op: looptest.OpRead, Fault: looptest.FaultECONNRESET, Every: 1, Count: 1, FD: loop.ChannelFD(resetCh)},
		looptest.Rule{Op: looptest.OpWrite, Fault: looptest.FaultEPIPE, Every: 1, Count: 1, FD: loop.ChannelFD(pipeCh)},
	)
	resetC.Write([]byte("reset me"))
	pipeC.Write([]byte("break my pipe"))
	for _, x := range []struct {
		ch   *loop.Channel
		c    net.Conn
		want error
	}{{resetCh, resetC, unix.ECONNRESET}, {pipeCh, pipeC, unix.EPIPE}} {
		loop.WaitFor(t, x.ch.Closed(), "the faulted channel closing")
		if !errors.Is(x.ch.Err(), x.want) {
			t.Errorf("channel error %v, want %v", x.ch.Err(), x.want)
		}
		loop.PeerClosed(t, x.c)
	}
	if err := loop.EchoOnce(healthy, "still here"); err != nil {
		t.Fatalf("the healthy channel: %v", err)
	}
	loop.EchoClients(t, ln.Addr(), 2)
	if inj.Injected(looptest.FaultECONNRESET) != 1 || inj.Injected(looptest.FaultEPIPE) != 1 {
		t.Errorf("injected %v, want one ECONNRESET and one EPIPE", inj.Counts())
	}
	noMisuse(t, inj)
}

// TestInjectEBADFContained: descriptors invalidated outside the kernel (EBADF
// injected on read, write and epoll_ctl after closing the number; a number
// closed or dup2'd over by another owner) fail their channel alone (D2): no
// second close, no leak, the loop serves on. EBADF from close itself (after
// closing) leaks nothing either.
func TestInjectEBADFContained(t *testing.T) {
	loop.CheckFDs(t)
	inj := looptest.NewInjector(5)
	g := loop.NewGroup(1, inj.Options(nil))
	defer loop.ShutdownGroup(t, g)
	l := g.Loops()[0]
	ln, active := loop.ServeActive(t, g)
	readC, readCh := loop.Connect(t, ln.Addr(), active)
	writeC, writeCh := loop.Connect(t, ln.Addr(), active)
	behindC, behindCh := loop.Connect(t, ln.Addr(), active)
	nullC, nullCh := loop.Connect(t, ln.Addr(), active)
	healthy, _ := loop.Connect(t, ln.Addr(), active)

	inj.Add(
		looptest.Rule{Op: looptest.OpRead, Fault: looptest.FaultEBADF, Every: 1, Count: 1, FD: loop.ChannelFD(readCh)},
		looptest.Rule{Op: looptest.OpWrite, Fault: looptest.FaultEBADF, Every: 1, Count: 1, FD: loop.ChannelFD(writeCh)},
	)
	readC.Write([]byte("read me"))
	writeC.Write([]byte("echo me"))
	for _, ch := range []*loop.Channel{readCh, writeCh} {
		loop.WaitFor(t, ch.Closed(), "the invalidated channel failing")
		if !errors.Is(ch.Err(), unix.EBADF) {
			t.Errorf("channel error %v, want EBADF", ch.Err())
		}
	}
	loop.PeerClosed(t, readC)
	loop.PeerClosed(t, writeC)

	// Out of band, for real: another owner closes the number; the next write
	// finds EBADF.
	if err := inj.CloseBehind(loop.ChannelFD(behindCh)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	behindCh.Write([]byte("to a number no longer ours"), func(err error) { done <- err })
	if err := <-done; err == nil {
		t.Error("a write to a descriptor closed behind the channel succeeded")
	}
	loop.WaitFor(t, behindCh.Closed(), "the channel closed behind failing")
	loop.PeerClosed(t, behindC)

	// dup2 /dev/null over the number: it stays valid but names another file;
	// the channel reads EOF, and the DEL before close(2) answers EPERM (epoll
	// cannot watch /dev/null, so the number is not the socket it registered):
	// the channel abandons the number instead of closing another file (D2).
	nullNum := loop.ChannelFD(nullCh)
	if err := inj.Dup2DevNull(nullNum); err != nil {
		t.Fatal(err)
	}
	nullCh.Write([]byte("into the void"), nil)
	nullC.Write([]byte("x"))
	loop.WaitFor(t, nullCh.Closed(), "the channel dup2'd over closing")
	if _, err := unix.FcntlInt(uintptr(nullNum), unix.F_GETFD, 0); err != nil {
		t.Errorf("the /dev/null put at fd %d was closed by the channel: %v", nullNum, err)
	}
	unix.Close(nullNum) // the test put it there

	// epoll_ctl EBADF on the next registration, and close EBADF on a clean close.
	inj.Add(
		looptest.Rule{Op: looptest.OpPollerControl, Fault: looptest.FaultEBADF, Every: 1, Count: 1},
		looptest.Rule{Op: looptest.OpClose, Fault: looptest.FaultEBADF, Every: 1, Count: 1},
	)
	ctlC, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer ctlC.Close()
	loop.PeerClosed(t, ctlC)
	_, closeCh := loop.Connect(t, ln.Addr(), active)
	closeCh.Close()
	loop.WaitFor(t, closeCh.Closed(), "the clean close")

	if err := loop.EchoOnce(healthy, "still here"); err != nil {
		t.Fatalf("the healthy channel: %v", err)
	}
	loop.EchoClients(t, ln.Addr(), 2)
	if n := l.Counters().DescriptorsContained.Load(); n < 4 {
		t.Errorf("DescriptorsContained = %d, want at least 4 (read, write, epoll_ctl, closed behind)", n)
	}
	if inj.Injected(looptest.FaultEBADF) != 4 {
		t.Errorf("injected %v, want 4 EBADF", inj.Counts())
	}
	if n := inj.CallsOnClosed(); n != 0 {
		t.Errorf("%d syscalls on numbers already found invalid: after EBADF the runtime must not touch the number (D2)", n)
	}
	t.Logf("injected %v; DescriptorsContained %d", inj.Counts(), l.Counters().DescriptorsContained.Load())
}

// TestInjectAcceptExhaustion: EMFILE, ENFILE and ENOBUFS from accept throttle
// the listener; the connection waits in the backlog and is served after.
func TestInjectAcceptExhaustion(t *testing.T) {
	loop.CheckFDs(t)
	inj := looptest.NewInjector(6)
	g := loop.NewGroup(1, inj.Options(nil))
	defer loop.ShutdownGroup(t, g)
	ln := loop.ServeEcho(t, g, loop.Loopback)
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := loop.EchoOnce(first, "before"); err != nil {
		t.Fatal(err)
	}
	inj.Add(
		looptest.Rule{Op: looptest.OpAccept, Fault: looptest.FaultEMFILE, Every: 1, Count: 1},
		looptest.Rule{Op: looptest.OpAccept, Fault: looptest.FaultENFILE, Every: 1, Count: 1},
		looptest.Rule{Op: looptest.OpAccept, Fault: looptest.FaultENOBUFS, Every: 1, Count: 1},
	)
	waiting, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	if err := loop.EchoOnce(first, "during"); err != nil {
		t.Fatalf("an existing connection stopped being served: %v", err)
	}
	if err := loop.EchoOnce(waiting, "after"); err != nil {
		t.Fatalf("the connection in the backlog was not served: %v", err)
	}
	if n := g.Loops()[0].Counters().ListenerThrottles.Load(); n != 3 {
		t.Errorf("ListenerThrottles = %d, want 3", n)
	}
	for _, f := range []looptest.Fault{looptest.FaultEMFILE, looptest.FaultENFILE, looptest.FaultENOBUFS} {
		if inj.Injected(f) != 1 {
			t.Errorf("%v injected %d times, want 1", f, inj.Injected(f))
		}
	}
	noMisuse(t, inj)
}

// TestInjectConnectInProgress: a connect that says EINPROGRESS, then a writable
// notification while it is still in progress (spurious: re-armed), still ends
// connected.
func TestInjectConnectInProgress(t *testing.T) {
	loop.CheckFDs(t)
	inj := looptest.NewInjector(7, looptest.Rule{Op: looptest.OpConnect, Fault: looptest.FaultEINPROGRESS, Every: 1})
	g := loop.NewGroup(1, inj.Options(nil))
	defer loop.ShutdownGroup(t, g)
	ln := loop.ServeEcho(t, g, loop.Loopback)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		rec := loop.NewRecorder()
		ch, err := g.Dial(ctx, ln.Addr(), rec, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		ch.Write([]byte("hello"), nil)
		loop.WaitData(t, rec, "hello")
		ch.Close()
		loop.WaitFor(t, ch.Closed(), "the dialed channel closing")
	}
	if n := inj.Injected(looptest.FaultEINPROGRESS); n != 3 {
		t.Errorf("EINPROGRESS injected %d times, want 3", n)
	}
	if n := g.Loops()[0].Counters().SpuriousReadiness.Load(); n == 0 {
		t.Error("the spurious writables were not counted")
	}
	noMisuse(t, inj)
}

// TestInjectPollerFailure: epoll_wait failing with EINVAL, or EBADF (its
// descriptor closed by another owner), takes the loop down the abnormal path:
// channels close, the loop ends stopped with the cause, and nothing leaks
// (EBADF: the poller's number is never closed again).
func TestInjectPollerFailure(t *testing.T) {
	for _, tc := range []struct {
		fault looptest.Fault
		errno unix.Errno
	}{{looptest.FaultEINVAL, unix.EINVAL}, {looptest.FaultEBADF, unix.EBADF}} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			loop.CheckFDs(t)
			inj := looptest.NewInjector(8)
			l := loop.New(inj.Options(nil))
			lnFD := loop.MustListen(t)
			active := make(chan *loop.Channel, 1)
			ln, err := l.Listen(lnFD, func(net.Addr) (loop.Handler, *loop.ChannelOptions) { return loop.NewActiveEcho(active), nil }, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, ch := loop.Connect(t, ln.Addr(), active)
			if err := loop.EchoOnce(c, "before"); err != nil {
				t.Fatal(err)
			}
			inj.Add(looptest.Rule{Op: looptest.OpPollerWait, Fault: tc.fault, Every: 1, Count: 1})
			l.Execute(func() {})
			select {
			case <-l.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the loop did not stop after its poller failed")
			}
			if err := l.Wait(); !errors.Is(err, loop.ErrLoopFailed) || !errors.Is(err, tc.errno) {
				t.Fatalf("Wait: %v, want loop.ErrLoopFailed with %v", err, tc.errno)
			}
			loop.WaitFor(t, ch.Closed(), "the channel of the failed loop closing")
			loop.WaitFor(t, ln.Closed(), "the listener of the failed loop closing")
			loop.PeerClosed(t, c)
			if inj.Injected(tc.fault) != 1 {
				t.Errorf("injected %v", inj.Counts())
			}
			noMisuse(t, inj)
		})
	}
}
