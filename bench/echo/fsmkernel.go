package echo

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
)

// echoHandler is the handler of examples/echo: it writes back every buffer it
// reads. SendCopy copies only what the kernel does not take at once.
type echoHandler struct{ loop.NopHandler }

func (echoHandler) OnRead(c *loop.Channel, p []byte) { c.SendCopy(p, nil) }

type fsmkernelServer struct {
	group *loop.Group
	ln    *loop.Listener
}

// StartFsmkernel serves the echo on one fsmkernel loop (loop.NewGroup(1, nil)).
func StartFsmkernel(addr string) (Server, error) { return startFsmkernel(addr, nil) }

// StartFsmkernelRecorded is StartFsmkernel with the loop recording its last
// 4096 transitions (loop.Options.Record): the cost of recording.
func StartFsmkernelRecorded(addr string) (Server, error) {
	return startFsmkernel(addr, &loop.Options{Record: 4096})
}

func startFsmkernel(addr string, opts *loop.Options) (Server, error) {
	a, err := tcpAddr(addr)
	if err != nil {
		return nil, err
	}
	g := loop.NewGroup(1, opts)
	ln, err := g.Serve(a, func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
		return echoHandler{}, nil
	}, nil)
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("listen on %v: %w", a, err)
	}
	return &fsmkernelServer{group: g, ln: ln}, nil
}

func (s *fsmkernelServer) Addr() net.Addr { return s.ln.Addr() }

func (s *fsmkernelServer) Close() error {
	s.ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.group.Shutdown(ctx)
}
