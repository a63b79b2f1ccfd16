package loop

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync/atomic"

	"github.com/fsmkernel/fsmkernel/sockets"
)

// Group is a set of loops that share the work: registrations are spread over
// them, and a loop that stopped (failed) is skipped for new ones.
type Group struct {
	loops []*Loop
	rr    atomic.Uint32
}

// NewGroup starts n loops (0 means GOMAXPROCS).
func NewGroup(n int, opts *Options) *Group {
	if n <= 0 {
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
	return g
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

// Serve listens on addr (TCP, Unix or vsock) and serves each connection on a
// loop of the group with the handler accepted returns.
func (g *Group) Serve(addr net.Addr, accepted Accepted, o *ListenerOptions) (*Listener, error) {
	l := g.next()
	fd, err := sockets.Listen(addr, l.socketOptions())
	if err != nil {
		return nil, err
	}
	return l.Listen(fd, accepted, o)
}

// Dial connects to addr on a loop of the group.
func (g *Group) Dial(ctx context.Context, addr net.Addr, h Handler, o *ChannelOptions) (*Channel, error) {
	opts := ChannelOptions{}
	if o != nil {
		opts = *o
	}
	if dl, ok := ctx.Deadline(); ok {
		if d := dl.Sub(g.clock().Now()); opts.ConnectTimeout <= 0 || d < opts.ConnectTimeout {
			opts.ConnectTimeout = d
		}
	}
	res := make(chan error, 1)
	c, err := g.next().Dial(addr, h, &opts, func(err error) { res <- err })
	if err != nil {
		return nil, err
	}
	select {
	case err := <-res:
		if err != nil {
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
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
