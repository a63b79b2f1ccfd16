// Command readme is the echo server of fsmkernel's README, whole: the README
// shows this file, and a test fails when the two differ.
package main

import (
	"bytes"
	"context"
	"log"
	"net"
	"os"
	"os/signal"

	"github.com/fsmkernel/fsmkernel/loop"
)

// echo writes back every buffer it reads. OnRead's buffer is the loop's, valid
// only during the call: Write keeps what it is given until written, so it gets
// a copy (Send and SendCopy, below, avoid the copy).
type echo struct{ loop.NopHandler }

func (echo) OnRead(c *loop.Channel, p []byte) { c.Write(bytes.Clone(p), nil) }

func main() {
	g := loop.NewGroup(0, nil) // one loop per GOMAXPROCS
	ln, err := g.Serve(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000},
		func(net.Addr) (loop.Handler, *loop.ChannelOptions) { return echo{}, nil }, nil)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("echo on %v", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	<-ctx.Done()
	// Graceful: every write accepted so far goes out, or the error says the
	// close was forced.
	if err := g.Shutdown(context.Background()); err != nil {
		log.Fatal(err)
	}
}
