package loop

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/fsmkernel/fsmkernel/sockets"
	"golang.org/x/sys/unix"
)

// copyEcho writes back what it reads with SendCopy: OnRead's buffer is reused
// at once, with no copy of its own.
type copyEcho struct{ NopHandler }

func (copyEcho) OnRead(c *Channel, p []byte) { c.SendCopy(p, nil) }

// socketpairChannel registers one end of a Unix socketpair on a new loop, driven
// by h, and returns the other end, blocking, for the test to drive with raw
// system calls (which allocate nothing, unlike net.Conn's).
func socketpairChannel(t testing.TB, h Handler, o *ChannelOptions) (peer int, ch *Channel) {
	t.Helper()
	l := New(nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return pairOnLoop(t, l, h, o)
}

// roundTrip writes msg to the peer end and reads its echo into got.
func roundTrip(t testing.TB, peer int, msg, got []byte) {
	if _, err := unix.Write(peer, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	for n := 0; n < len(got); {
		m, err := unix.Read(peer, got[n:])
		if err != nil || m == 0 {
			t.Fatalf("read the echo after %d bytes: %d, %v", n, m, err)
		}
		n += m
	}
}

// TestEchoSteadyStateAllocatesNothing: once a channel is up, an echo (poller
// wakeup, read, OnRead, SendCopy, writev, completion) allocates nothing, on the
// loop goroutine or anywhere else in the process.
func TestEchoSteadyStateAllocatesNothing(t *testing.T) {
	checkFDs(t)
	for _, h := range []Handler{copyEcho{}, sendEcho{}} {
		peer, _ := socketpairChannel(t, h, nil)
		msg := bytes.Repeat([]byte("0123456789abcdef"), 64)
		got := make([]byte, len(msg))
		roundTrip(t, peer, msg, got) // warm up: first use grows the queues
		allocs := testing.AllocsPerRun(500, func() { roundTrip(t, peer, msg, got) })
		if !bytes.Equal(got, msg) {
			t.Fatalf("%T: the echo differs from the message", h)
		}
		if allocs != 0 {
			t.Errorf("%T: %.2f allocations per echo, want 0", h, allocs)
		}
	}
}

// sendEcho echoes with Send from a buffer it owns and reuses once written.
type sendEcho struct{ NopHandler }

var sendEchoBuf = make([]byte, 64<<10)

func (sendEcho) OnRead(c *Channel, p []byte) {
	// The previous echo completed before this read (the test is ping-pong).
	c.Send(sendEchoBuf[:copy(sendEchoBuf, p)], nil)
}

// scribbler echoes with SendCopy from a buffer of its own, which it overwrites
// as soon as SendCopy returns.
type scribbler struct {
	NopHandler
	buf []byte
}

func (s *scribbler) OnRead(c *Channel, p []byte) {
	own := s.buf[:copy(s.buf, p)]
	c.SendCopy(own, nil)
	for i := range own {
		own[i] = 'X'
	}
}

// TestSendCopyKeepsWhatTheKernelDidNotTake shrinks the peer's receive buffer and
// sends 2 MiB without reading, so that the channel's writes go short, then queue
// behind the unwritten rest until backpressure stops its reads; then it reads
// everything back. The buffers SendCopy was given change under it: the loop's
// read buffer on every read, the scribbler's own buffer as soon as SendCopy
// returns. The peer must still get every byte it sent, in order.
func TestSendCopyKeepsWhatTheKernelDidNotTake(t *testing.T) {
	checkFDs(t)
	for _, h := range []Handler{copyEcho{}, &scribbler{buf: make([]byte, 64<<10)}} {
		peer, ch := socketpairChannel(t, h, nil)
		if err := unix.SetsockoptInt(peer, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096); err != nil {
			t.Fatal(err)
		}
		sent := make([]byte, 2<<20)
		for i := range sent {
			sent[i] = byte(i*7 + i>>13)
		}
		writeErr := make(chan error, 1)
		go func() {
			for off := 0; off < len(sent); {
				n, err := unix.Write(peer, sent[off:min(off+8192, len(sent))])
				if err != nil {
					writeErr <- err
					return
				}
				off += n
			}
			writeErr <- nil
		}()
		got := make([]byte, 0, len(sent))
		buf := make([]byte, 64<<10)
		time.Sleep(50 * time.Millisecond) // let the output queue up first
		for len(got) < len(sent) {
			n, err := unix.Read(peer, buf)
			if err != nil || n == 0 {
				t.Fatalf("%T: read after %d bytes: %d, %v", h, len(got), n, err)
			}
			got = append(got, buf[:n]...)
		}
		if err := <-writeErr; err != nil {
			t.Fatal(err)
		}
		if i := firstDifference(got, sent); i >= 0 {
			t.Fatalf("%T: the echo differs from what was sent at byte %d of %d: %q, want %q", h, i, len(sent), got[i], sent[i])
		}
		if err := ch.Close(); err != nil {
			t.Fatal(err)
		}
		<-ch.Closed()
	}
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// BenchmarkEchoSocketpair is one 1 KiB echo per op over a Unix socketpair, the
// peer driven with raw system calls: its allocs/op are the runtime's per echo.
func BenchmarkEchoSocketpair(b *testing.B) {
	peer, _ := socketpairChannel(b, copyEcho{}, nil)
	msg := make([]byte, 1024)
	got := make([]byte, len(msg))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		roundTrip(b, peer, msg, got)
	}
}

// cannedSyscalls answers every read with a full payload shorter than the read
// buffer and takes every write whole, without entering the kernel: what is left
// of an echo is the runtime's own work.
type cannedSyscalls struct {
	sockets.Syscalls
	payload int
}

func (s cannedSyscalls) Read(fd int, p []byte) (int, error) { return min(s.payload, len(p)), nil }

func (s cannedSyscalls) Writev(fd int, bufs [][]byte) (int, error) {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n, nil
}

// BenchmarkEchoRuntimeOnly is one echo per op (readable, read, OnRead with
// SendCopy, writev, completion: four transitions of the channel's table) with
// canned system call results: the user-space cost of an echo on the loop.
func BenchmarkEchoRuntimeOnly(b *testing.B) { benchmarkEchoRuntimeOnly(b, nil, nil) }

// BenchmarkEchoRuntimeOnlyTimeouts is the same echo on a channel with an idle
// and a write timeout: the bookkeeping they cost per echo.
func BenchmarkEchoRuntimeOnlyTimeouts(b *testing.B) {
	benchmarkEchoRuntimeOnly(b, nil, &ChannelOptions{IdleTimeout: time.Hour, WriteTimeout: time.Hour})
}

func benchmarkEchoRuntimeOnly(b *testing.B, o *Options, co *ChannelOptions) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fds[1])
	fd, err := sockets.AdoptFD(fds[0], &sockets.Options{Syscalls: cannedSyscalls{sockets.System(), 1024}})
	unix.Close(fds[0])
	if err != nil {
		b.Fatal(err)
	}
	l := New(o)
	defer l.Close()
	ch, err := l.Register(fd, copyEcho{}, co)
	if err != nil {
		b.Fatal(err)
	}
	if err := <-l.Submit(func() error { return nil }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	err = <-l.Submit(func() error {
		ev := PollEvent{Token: ch.reg.token(), Readable: true}
		for range b.N {
			ch.ready(ev)
		}
		return nil
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if st := ch.m.State().String(); st != "active" {
		b.Fatalf("channel %s after the echoes, want active", st)
	}
}
