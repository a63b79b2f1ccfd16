package loop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
)

// echoHandler writes back every byte it reads.
type echoHandler struct{ loop.NopHandler }

func (echoHandler) OnRead(c *loop.Channel, p []byte) { c.SendCopy(p, nil) }

// stop shuts the group down, giving its channels a second to drain.
func stop(g *loop.Group) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	g.Shutdown(ctx)
}

// An echo server on a loop, and a client of package net.
func ExampleGroup_ServeAddress() {
	g := loop.NewGroup(1, nil)
	defer stop(g)
	ln, err := g.ServeAddress("tcp", "127.0.0.1:0", func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
		return echoHandler{}, nil
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
	defer c.Close()
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(buf))
	// Output: hello
}

// collector gathers what its channel reads and hands it over when the
// channel closes. Its callbacks run on the loop, one at a time.
type collector struct {
	loop.NopHandler
	buf  bytes.Buffer
	done chan string
}

func (h *collector) OnRead(_ *loop.Channel, p []byte) { h.buf.Write(p) } // p is valid only during the call
func (h *collector) OnInactive(*loop.Channel)         { h.done <- h.buf.String() }

// A client on a loop, reading a greeting from a server of package net until
// the server closes the connection.
func ExampleGroup_DialAddress() {
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	go func() {
		c, err := srv.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("hello from package net"))
		c.Close()
	}()

	g := loop.NewGroup(1, nil)
	defer stop(g)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := &collector{done: make(chan string, 1)}
	if _, err := g.DialAddress(ctx, "tcp", srv.Addr().String(), h, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-h.done)
	// Output: hello from package net
}

// net/http on a group: the server through Listen, the client through
// DialContext, both sides' connections served by the group's loop.
func ExampleGroup_Listen() {
	g := loop.NewGroup(1, nil)
	defer stop(g)
	ln, err := g.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", r.URL.Path[1:])
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	client := &http.Client{Transport: &http.Transport{DialContext: g.DialContext, DisableKeepAlives: true}}
	resp, err := client.Get("http://" + ln.Addr().String() + "/fsmkernel")
	if err != nil {
		fmt.Println(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status, string(body))
	}
	srv.Close()
	fmt.Println(<-served)
	// Output:
	// 200 OK hello, fsmkernel
	// http: Server closed
}

// Options out of range are errors that name the option and its value.
func ExampleStartGroup() {
	_, err := loop.StartGroup(0, &loop.Options{DrainTimeout: -time.Second})
	fmt.Println(err)
	// Output: loop: Options.DrainTimeout -1s is negative
}

// Channel options out of range fail the dial before any socket is made; the
// error names the dial, then the option and its value.
func ExampleChannelOptions() {
	g := loop.NewGroup(1, nil)
	defer stop(g)
	o := &loop.ChannelOptions{HighWatermark: 1024, LowWatermark: 2048}
	_, err := g.DialAddress(context.Background(), "tcp", "127.0.0.1:9", loop.NopHandler{}, o)
	fmt.Println(err)
	fmt.Println(o.Validate())
	// Output:
	// dial tcp 127.0.0.1:9: loop: ChannelOptions.LowWatermark 2048 is not below HighWatermark 1024
	// loop: ChannelOptions.LowWatermark 2048 is not below HighWatermark 1024
}

// fragileEcho echoes, but panics on a '!': a bug the loop contains, failing
// only that channel.
type fragileEcho struct{ loop.NopHandler }

func (fragileEcho) OnRead(c *loop.Channel, p []byte) {
	if bytes.IndexByte(p, '!') >= 0 {
		panic("a handler bug")
	}
	c.SendCopy(p, nil)
}

// A loop's counters after an echo and a handler that panicked: the panic was
// contained (the connection closed, the loop went on) and counted.
func ExampleLoop_Counters() {
	g := loop.NewGroup(1, nil)
	ln, err := g.ServeAddress("tcp", "127.0.0.1:0", func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
		return fragileEcho{}, nil
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
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	io.ReadFull(c, buf)
	fmt.Println(string(buf))
	c.Write([]byte("!"))
	_, err = c.Read(buf) // the server closed the connection
	fmt.Println(err != nil)
	c.Close()
	stop(g) // every count is final once the loop has stopped

	n := g.Loops()[0].Counters()
	fmt.Println("panics contained:", n.PanicsContained.Load())
	fmt.Println("events rejected:", n.Rejected.Load())
	// Output:
	// hello
	// true
	// panics contained: 1
	// events rejected: 0
}

// Wait returns once every loop of the group has stopped: nil when none
// failed.
func ExampleGroup_Wait() {
	g := loop.NewGroup(2, nil)
	go stop(g)
	fmt.Println("stopped:", g.Wait())
	// Output: stopped: <nil>
}

// activeNotice hands over its channel once it is active.
type activeNotice struct {
	echoHandler
	active chan *loop.Channel
}

func (h activeNotice) OnActive(c *loop.Channel) { h.active <- c }

// An idle timeout closes a connection nothing was read from or written to for
// that long; its error says so.
func ExampleChannelOptions_idleTimeout() {
	g := loop.NewGroup(1, nil)
	defer stop(g)
	h := activeNotice{active: make(chan *loop.Channel, 1)}
	ln, err := g.ServeAddress("tcp", "127.0.0.1:0", func(net.Addr) (loop.Handler, *loop.ChannelOptions) {
		return h, &loop.ChannelOptions{IdleTimeout: 50 * time.Millisecond}
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
	defer c.Close()
	_, err = c.Read(make([]byte, 1)) // the server says nothing, then closes
	fmt.Println("client:", err)
	ch := <-h.active
	<-ch.Closed()
	err = ch.Err()
	fmt.Println("server:", errors.Is(err, loop.ErrIdleTimeout), errors.Is(err, os.ErrDeadlineExceeded))
	// Output:
	// client: EOF
	// server: true true
}
