package grpcbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// serve starts the Echo service on a listener of kind on 127.0.0.1 and
// returns its address; the server and its loop stop when the test ends.
func serve(tb testing.TB, kind string) string {
	tb.Helper()
	ln, closeGroup, err := Listen(kind, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	return serveOn(tb, ln, closeGroup)
}

// serveOn serves the Echo service on ln until the test ends, then stops the
// server and calls closeGroup.
func serveOn(tb testing.TB, ln net.Listener, closeGroup func()) string {
	tb.Helper()
	srv := NewServer()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
		closeGroup()
	})
	return ln.Addr().String()
}

// client returns a client of target that is closed when the test ends.
func client(tb testing.TB, target string, opts ...grpc.DialOption) *grpc.ClientConn {
	tb.Helper()
	cc, err := NewClient(target, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return cc
}

// payload is n pseudo-random bytes from seed.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// checkEcho runs the service's unary and streaming calls through cc and
// checks every answer byte for byte: unary calls of sizes from empty to past
// the loop's 1 MiB write chunk, 16 goroutines calling at once on the one
// HTTP/2 connection, and a stream of 200 messages of random sizes sent
// while the answers are read.
func checkEcho(t *testing.T, cc *grpc.ClientConn) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var resp []byte
	for _, n := range []int{0, 1, 1024, 64<<10 + 3, 2<<20 + 17} {
		req := payload(n, 1)
		if err := Ping(ctx, cc, req, &resp); err != nil {
			t.Fatalf("Ping of %d bytes: %v", n, err)
		}
		if !bytes.Equal(resp, req) {
			t.Fatalf("Ping of %d bytes answered %d bytes that differ", n, len(resp))
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			var resp []byte
			for i := range 50 {
				req := payload(1+(g*50+i)%3000, uint64(g))
				if err := Ping(ctx, cc, req, &resp); err != nil {
					errs <- fmt.Errorf("goroutine %d call %d: %w", g, i, err)
					return
				}
				if !bytes.Equal(resp, req) {
					errs <- fmt.Errorf("goroutine %d call %d: the answer differs", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	st, err := Stream(ctx, cc)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	r := rand.New(rand.NewPCG(2, 3))
	var sent [][]byte
	for i := range 200 {
		sent = append(sent, payload(r.IntN(40<<10), uint64(i)))
	}
	sendErr := make(chan error, 1)
	go func() {
		for _, m := range sent {
			if err := st.SendMsg(&m); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- st.CloseSend()
	}()
	for i, m := range sent {
		if err := st.RecvMsg(&resp); err != nil {
			t.Fatalf("stream message %d: %v", i, err)
		}
		if !bytes.Equal(resp, m) {
			t.Fatalf("stream message %d: %d bytes sent, %d that differ came back", i, len(m), len(resp))
		}
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("stream send: %v", err)
	}
	if err := st.RecvMsg(&resp); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last answer RecvMsg = %v, want io.EOF", err)
	}
}

// TestGRPCListenConn: gRPC's unary and streaming calls over fsmkernel's
// ListenConn on TCP loopback, and over net.Listen as the control; the client
// dials with grpc's own dialer.
func TestGRPCListenConn(t *testing.T) {
	for _, kind := range Listeners {
		t.Run(kind, func(t *testing.T) {
			checkEcho(t, client(t, "passthrough:///"+serve(t, kind)))
		})
	}
}

func TestCodec(t *testing.T) {
	var c Codec
	if _, err := c.Marshal("not bytes"); err == nil {
		t.Error("Marshal of a string accepted")
	}
	p := []byte("ping")
	out, err := c.Marshal(&p)
	if err != nil || !bytes.Equal(out.Materialize(), p) {
		t.Fatalf("Marshal = %q, %v", out.Materialize(), err)
	}
	into := make([]byte, 0, 64)
	if err := c.Unmarshal(out, &into); err != nil || string(into) != "ping" || cap(into) != 64 {
		t.Errorf("Unmarshal = %q (cap %d), %v; want ping in the same buffer", into, cap(into), err)
	}
	if err := c.Unmarshal(out, new(string)); err == nil {
		t.Error("Unmarshal into a string accepted")
	}
}

func TestListenUnknown(t *testing.T) {
	if _, _, err := Listen("gnet", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err == nil {
		t.Error("an unknown listener was accepted")
	}
}

// BenchmarkGRPCUnary is a unary ping-pong of 1 KiB over TCP loopback, the
// server on net.Listen or on ListenConn (one loop), the client dialing with
// grpc's own dialer, both in this process: allocs/op counts both sides.
func BenchmarkGRPCUnary(b *testing.B) {
	for _, kind := range Listeners {
		b.Run(kind, func(b *testing.B) {
			cc := client(b, "passthrough:///"+serve(b, kind))
			ctx := context.Background()
			req := payload(1024, 1)
			var resp []byte
			if err := Ping(ctx, cc, req, &resp); err != nil { // connect outside the timing
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(req)))
			for b.Loop() {
				if err := Ping(ctx, cc, req, &resp); err != nil {
					b.Fatal(err)
				}
			}
			if !bytes.Equal(resp, req) {
				b.Fatal("the last answer differs from the request")
			}
		})
	}
}
