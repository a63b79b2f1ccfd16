package loop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// Group is a set of loops that share the work: registrations are spread over
// them, and a loop that stopped (failed) is skipped for new ones.
type Group struct {
	loops []*Loop
	rr    atomic.Uint32
}

// NewGroup starts n loops (0 means GOMAXPROCS). It panics if n is negative or
// opts is invalid (see Options.Validate); StartGroup returns that error
// instead.
func NewGroup(n int, opts *Options) *Group {
	g, err := StartGroup(n, opts)
	if err != nil {
		panic(err)
	}
	return g
}

// StartGroup starts n loops (0 means GOMAXPROCS), like NewGroup, or returns an
// error naming what is wrong, without starting any: a negative n, or the
// error of Options.Validate.
func StartGroup(n int, opts *Options) (*Group, error) {
	if n < 0 {
		return nil, fmt.Errorf("loop: a group of %d loops", n)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	o := opts.withDefaults()
	g := &Group{}
	for i := 0; i < n; i++ {
		g.loops = append(g.loops, newLoop(i, o, g))
	}
	for _, l := range g.loops {
		l.start()
	}
	return g, nil
}

// Loops returns the group's loops.
func (g *Group) Loops() []*Loop { return g.loops }

// next returns the next loop that has not stopped, round robin; the first loop
// when all have.
func (g *Group) next() *Loop {
	n := len(g.loops)
	for i := 0; i < n; i++ {
		l := g.loops[int(g.rr.Add(1))%n]
		select {
		case <-l.done:
			continue
		default:
			return l
		}
	}
	return g.loops[0]
}

// Next returns the loop the next registration goes to.
func (g *Group) Next() *Loop { return g.next() }

// Serve listens on addr (a *net.TCPAddr, a *net.UnixAddr or a *vsock.Addr)
// and serves each connection on a loop of the group with the handler accepted
// returns. Every error is a *net.OpError whose Op is "listen", naming the
// network and addr, as net.Listen's are: "listen tcp 127.0.0.1:9000: bind:
// address already in use". ServeAddress takes the address as a string.
func (g *Group) Serve(addr net.Addr, accepted Accepted, o *ListenerOptions) (*Listener, error) {
	return g.serve(addrNetwork(addr), addr, accepted, o)
}

func (g *Group) serve(network string, addr net.Addr, accepted Accepted, o *ListenerOptions) (*Listener, error) {
	fail := func(err error) error { return &net.OpError{Op: "listen", Net: network, Addr: addr, Err: err} }
	if err := o.Validate(); err != nil {
		return nil, fail(err)
	}
	l := g.next()
	fd, err := sockets.Listen(addr, l.socketOptions())
	if err != nil {
		return nil, fail(err)
	}
	ln, err := l.Listen(fd, accepted, o)
	if err != nil {
		return nil, fail(err)
	}
	return ln, nil
}

// Dial connects to addr (a *net.TCPAddr with an IP, a *net.UnixAddr or a
// *vsock.Addr) on a loop of the group and returns the channel once it is
// connected. ctx bounds the connect, as does o's ConnectTimeout, whichever
// ends first. Every error is a *net.OpError whose Op is "dial", naming the
// network and addr, as net.Dial's are: "dial tcp 127.0.0.1:9: connect:
// connection refused". When the time runs out its Err is a timeout (a
// net.Error whose Timeout is true, and errors.Is it os.ErrDeadlineExceeded and
// context.DeadlineExceeded); when ctx is canceled, ctx's error. DialAddress
// takes the address as a string.
func (g *Group) Dial(ctx context.Context, addr net.Addr, h Handler, o *ChannelOptions) (*Channel, error) {
	return g.dial(ctx, addrNetwork(addr), addr, h, o)
}

func (g *Group) dial(ctx context.Context, network string, addr net.Addr, h Handler, o *ChannelOptions) (*Channel, error) {
	fail := func(err error) error { return dialOpError(network, addr, err) }
	if err := o.Validate(); err != nil {
		return nil, fail(err)
	}
	opts := ChannelOptions{}
	if o != nil {
		opts = *o
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(err)
	}
	if dl, ok := ctx.Deadline(); ok {
		d := dl.Sub(g.clock().Now())
		if d <= 0 {
			return nil, fail(context.DeadlineExceeded)
		}
		if opts.ConnectTimeout == 0 || d < opts.ConnectTimeout {
			opts.ConnectTimeout = d
		}
	}
	res := make(chan error, 1)
	c, err := g.next().Dial(addr, h, &opts, func(err error) { res <- err })
	if err != nil {
		return nil, fail(err)
	}
	select {
	case err := <-res:
		if err != nil {
			return nil, fail(err)
		}
		return c, nil
	case <-ctx.Done():
		c.Close()
		return nil, fail(ctx.Err())
	}
}

// addrNetwork is addr's network, "" for a nil addr.
func addrNetwork(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	return addr.Network()
}

// dialOpError makes err, the failure of a dial to addr, the *net.OpError net.Dial
// would return: the channel's own "dial" error gives its cause (a connect's
// errno as the connect system call's error, "connect: connection refused"),
// a timeout becomes dialTimeout, and any other error is the Err as it is.
func dialOpError(network string, addr net.Addr, err error) error {
	var op *net.OpError
	switch {
	case errors.Is(err, errConnectTimeout), errors.Is(err, context.DeadlineExceeded):
		err = dialTimeout{cause: err}
	case errors.As(err, &op) && op.Op == "dial":
		err = op.Err
		if errno, ok := err.(syscall.Errno); ok {
			err = os.NewSyscallError("connect", errno)
		}
	case errors.Is(err, net.ErrClosed):
		err = net.ErrClosed // the channel closed before it connected
	}
	return &net.OpError{Op: "dial", Net: network, Addr: addr, Err: err}
}

// dialTimeout is the Err of a dial that ran out of time, by ConnectTimeout or
// ctx's deadline: "i/o timeout", as net says, a net.Error whose Timeout is
// true, and errors.Is it os.ErrDeadlineExceeded, context.DeadlineExceeded and
// its cause.
type dialTimeout struct{ cause error }

func (dialTimeout) Error() string   { return "i/o timeout" }
func (dialTimeout) Timeout() bool   { return true }
func (dialTimeout) Temporary() bool { return true }
func (e dialTimeout) Unwrap() error { return e.cause }

func (dialTimeout) Is(target error) bool {
	return target == os.ErrDeadlineExceeded || target == context.DeadlineExceeded
}

// Wait blocks until every loop of the group has stopped, by Shutdown, Close or
// failure, and returns nil if none failed, or else the cause (see Loop.Wait:
// ErrLoopFailed wrapping it) of the first failed loop in the order of Loops.
// Nothing stops a loop but those and a failure: Wait returns once another
// goroutine has called Shutdown or Close, or every loop has failed.
func (g *Group) Wait() error {
	var first error
	for _, l := range g.loops {
		if err := l.Wait(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Shutdown stops every loop gracefully (see Loop.Shutdown) and returns the
// errors of those that did not stop cleanly.
func (g *Group) Shutdown(ctx context.Context) error {
	for _, l := range g.loops {
		l.submit(request{kind: reqShutdownGracefully})
	}
	var errs []error
	for _, l := range g.loops {
		if err := l.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops every loop at once.
func (g *Group) Close() error {
	var errs []error
	for _, l := range g.loops {
		l.submit(request{kind: reqShutdownNow})
	}
	for _, l := range g.loops {
		if err := l.Wait(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// clock is the group's clock: every loop of a group has the same options.
func (g *Group) clock() Clock { return g.loops[0].opts.Clock }
