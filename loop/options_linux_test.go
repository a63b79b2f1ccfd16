package loop

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// TestOptionsValidate: every negative field of Options is refused by name and
// value, by Validate, Start and StartGroup, and New and NewGroup panic with
// the same error; 0 is each field's default, not an error.
func TestOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{DrainTimeout: -time.Second}, "loop: Options.DrainTimeout -1s is negative"},
		{Options{TaskBudget: -1}, "loop: Options.TaskBudget -1 is negative"},
		{Options{ReadBudget: -2}, "loop: Options.ReadBudget -2 is negative"},
		{Options{AcceptBudget: -3}, "loop: Options.AcceptBudget -3 is negative"},
		{Options{ReadBufferSize: -4096}, "loop: Options.ReadBufferSize -4096 is negative"},
	} {
		if err := c.opts.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate(%+v) = %v, want %q", c.opts, err, c.want)
		}
		if l, err := Start(&c.opts); l != nil || err == nil || err.Error() != c.want {
			t.Errorf("Start(%+v) = %v, %v, want %q", c.opts, l, err, c.want)
		}
		if g, err := StartGroup(2, &c.opts); g != nil || err == nil || err.Error() != c.want {
			t.Errorf("StartGroup(%+v) = %v, %v, want %q", c.opts, g, err, c.want)
		}
		wantPanic(t, c.want, func() { New(&c.opts) })
		wantPanic(t, c.want, func() { NewGroup(1, &c.opts) })
	}
	if _, err := StartGroup(-1, nil); err == nil || err.Error() != "loop: a group of -1 loops" {
		t.Errorf("StartGroup(-1) = %v, want a group of -1 loops refused", err)
	}
	wantPanic(t, "loop: a group of -1 loops", func() { NewGroup(-1, nil) })
	if err := (*Options)(nil).Validate(); err != nil {
		t.Errorf("nil Options: %v", err)
	}
	var zero Options
	if err := zero.Validate(); err != nil {
		t.Errorf("zero Options: %v", err)
	}
	g, err := StartGroup(1, &Options{ReadBufferSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, g)
}

func wantPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		err, ok := r.(error)
		if !ok || err.Error() != want {
			t.Errorf("panic %v, want %q", r, want)
		}
	}()
	f()
}

// TestChannelOptionsValidate: a negative watermark or ConnectTimeout, or a low
// watermark not below the high one in force, is refused by name and value by
// Validate and by every way options reach a channel; a low watermark with the
// default high one, or a high one with the default low one, is fine.
func TestChannelOptionsValidate(t *testing.T) {
	bad := []struct {
		opts ChannelOptions
		want string
	}{
		{ChannelOptions{HighWatermark: 1024, LowWatermark: 2048}, "loop: ChannelOptions.LowWatermark 2048 is not below HighWatermark 1024"},
		{ChannelOptions{HighWatermark: 1024, LowWatermark: 1024}, "loop: ChannelOptions.LowWatermark 1024 is not below HighWatermark 1024"},
		{ChannelOptions{LowWatermark: 1 << 20}, "loop: ChannelOptions.LowWatermark 1048576 is not below the default HighWatermark 1048576"},
		{ChannelOptions{HighWatermark: -1}, "loop: ChannelOptions.HighWatermark -1 is negative"},
		{ChannelOptions{LowWatermark: -1}, "loop: ChannelOptions.LowWatermark -1 is negative"},
		{ChannelOptions{ConnectTimeout: -time.Millisecond}, "loop: ChannelOptions.ConnectTimeout -1ms is negative"},
		{ChannelOptions{IdleTimeout: -time.Second}, "loop: ChannelOptions.IdleTimeout -1s is negative"},
		{ChannelOptions{WriteTimeout: -time.Second}, "loop: ChannelOptions.WriteTimeout -1s is negative"},
	}
	for _, c := range bad {
		if err := c.opts.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("Validate(%+v) = %v, want %q", c.opts, err, c.want)
		}
	}
	for _, o := range []*ChannelOptions{nil, {}, {HighWatermark: 1}, {HighWatermark: 100}, {LowWatermark: 1<<20 - 1}, {HighWatermark: 10, LowWatermark: 9}} {
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", o, err)
		}
	}

	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	l := g.Loops()[0]
	for _, c := range bad {
		// Dial: nothing is opened, and the error names the dial.
		_, err := g.Dial(context.Background(), loopback, NopHandler{}, &c.opts)
		if want := "dial tcp 127.0.0.1:0: " + c.want; err == nil || err.Error() != want {
			t.Errorf("Group.Dial(%+v) = %v, want %q", c.opts, err, want)
		}
		if _, err := l.Dial(loopback, NopHandler{}, &c.opts, func(error) {}); err == nil || err.Error() != c.want {
			t.Errorf("Loop.Dial(%+v) = %v, want %q", c.opts, err, c.want)
		}
		// Register: the error, and the descriptor closed (checkFDs).
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := sockets.AdoptFD(fds[0], nil)
		unix.Close(fds[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Register(fd, NopHandler{}, &c.opts); err == nil || err.Error() != c.want {
			t.Errorf("Register(%+v) = %v, want %q", c.opts, err, c.want)
		}
		unix.Close(fds[1])
	}
}

// TestListenerOptionsValidate: a negative BackoffBase is refused by Validate,
// by Serve (which opens nothing) and by Loop.Listen (which closes the
// descriptor it was given).
func TestListenerOptionsValidate(t *testing.T) {
	const want = "loop: ListenerOptions.BackoffBase -10ms is negative"
	o := &ListenerOptions{BackoffBase: -10 * time.Millisecond}
	if err := o.Validate(); err == nil || err.Error() != want {
		t.Fatalf("Validate: %v, want %q", err, want)
	}
	checkFDs(t)
	g := NewGroup(1, nil)
	defer shutdown(t, g)
	accept := func(net.Addr) (Handler, *ChannelOptions) { return echo{}, nil }
	_, err := g.Serve(loopback, accept, o)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "listen" || err.Error() != "listen tcp 127.0.0.1:0: "+want {
		t.Errorf("Serve: %v, want listen tcp 127.0.0.1:0: %s", err, want)
	}
	if _, err := g.Loops()[0].Listen(mustListen(t), accept, o); err == nil || err.Error() != want {
		t.Errorf("Loop.Listen: %v, want %q", err, want)
	}
}

// TestAcceptedBadOptions: options from Accepted that Validate refuses fail
// that connection only: it is closed without a channel, the listener's
// OnError is told why, and the listener goes on accepting.
func TestAcceptedBadOptions(t *testing.T) {
	checkFDs(t)
	g := NewGroup(2, nil)
	defer shutdown(t, g)
	var mu sync.Mutex
	var errs []error
	reported := make(chan struct{}, 1)
	var n int
	ln, err := g.Serve(loopback, func(net.Addr) (Handler, *ChannelOptions) {
		n++ // on the listener's loop, one call at a time
		if n == 1 {
			return recordActive{t: t}, &ChannelOptions{HighWatermark: 1024, LowWatermark: 2048}
		}
		return echo{}, nil
	}, &ListenerOptions{OnError: func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		reported <- struct{}{}
	}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	peerClosed(t, first)
	wait(t, reported, "OnError")
	mu.Lock()
	if len(errs) != 1 || errs[0].Error() != "loop: ChannelOptions.LowWatermark 2048 is not below HighWatermark 1024" {
		t.Errorf("OnError was told %v, want the LowWatermark error once", errs)
	}
	mu.Unlock()
	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := echoOnce(second, "still accepting"); err != nil {
		t.Fatal(err)
	}
	if err := ln.Err(); err != nil {
		t.Errorf("listener: %v", err)
	}
}

// recordActive fails the test if a channel it was given ever becomes active.
type recordActive struct {
	NopHandler
	t *testing.T
}

func (r recordActive) OnActive(*Channel) { r.t.Error("a channel with refused options became active") }
