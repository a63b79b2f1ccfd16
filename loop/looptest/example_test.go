//go:build linux || darwin || freebsd

package looptest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
	"github.com/fsmkernel/fsmkernel/loop/looptest"
)

// echo is the Handler under test: it writes back what it reads.
type echo struct{ loop.NopHandler }

func (echo) OnRead(c *loop.Channel, p []byte) {
	c.Write(append([]byte(nil), p...), nil)
}

// An echo Handler served through an Injector: every read of the server is
// short and every third one says EAGAIN first, and the client still gets its
// bytes back whole, with no call made on a closed descriptor.
func Example() {
	inj := looptest.NewInjector(1,
		looptest.Rule{Op: looptest.OpRead, Fault: looptest.FaultEAGAIN, Every: 3},
		looptest.Rule{Op: looptest.OpRead, Fault: looptest.FaultShort, Every: 1},
	)
	g := loop.NewGroup(1, inj.Options(nil))
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
		return echo{}, nil
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	msg := []byte("hello, injected world")
	c.Write(msg)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadFull(c, got)
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Shutdown(ctx)

	fmt.Printf("%s (%v)\n", got, err)
	fmt.Println("short reads injected:", inj.Injected(looptest.FaultShort) > 0)
	fmt.Println("calls on closed descriptors:", inj.CallsOnClosed())
	// Output:
	// hello, injected world (<nil>)
	// short reads injected: true
	// calls on closed descriptors: 0
}
