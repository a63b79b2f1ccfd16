package loop

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The tests of this file run net/http's server over ListenConn, with clients
// that dial through DialConn (a Transport's DialContext) and through package
// net.

// httpServer is an http.Server serving over ListenConn on a group of two
// loops, which also dials the clients that use DialConn.
type httpServer struct {
	t      *testing.T
	tr     transport
	g      *Group
	ln     net.Listener
	srv    *http.Server
	served chan error
	base   string // the URL the clients' requests start with

	mu     sync.Mutex
	states map[net.Conn]http.ConnState // the last state of every connection
	order  []net.Conn                  // in the order they arrived
	news   int
	bad    []string // connections that were not the adapter's
}

// startHTTP serves h over ListenConn on network ("tcp" or "unix"): plain
// HTTP, or TLS when tlsConf is set.
func startHTTP(t *testing.T, network string, h http.Handler, tlsConf *tls.Config) *httpServer {
	t.Helper()
	return startHTTPOver(t, netTransport(network), h, tlsConf)
}

// startHTTPOver is startHTTP over tr. The test's cleanup closes the server,
// checks that Serve returned http.ErrServerClosed, waits for the listener's
// descriptor to close and stops the group.
func startHTTPOver(t *testing.T, tr transport, h http.Handler, tlsConf *tls.Config) *httpServer {
	t.Helper()
	g := NewGroup(2, nil)
	ln, err := g.ListenConn(tr.laddr(t))
	if err != nil {
		g.Close()
		t.Fatal(err)
	}
	f := &httpServer{t: t, tr: tr, g: g, ln: ln, served: make(chan error, 1), states: map[net.Conn]http.ConnState{}, base: "http://fsm.test"}
	f.srv = &http.Server{Handler: h, ConnState: f.connState, ReadHeaderTimeout: 30 * time.Second, TLSConfig: tlsConf}
	go func() {
		if tlsConf != nil {
			f.served <- f.srv.ServeTLS(ln, "", "")
			return
		}
		f.served <- f.srv.Serve(ln)
	}()
	if tlsConf != nil {
		f.base = "https://localhost"
	}
	t.Cleanup(func() {
		f.srv.Close()
		if err, ok := within(f.served, 10*time.Second); !ok {
			t.Error("Serve did not return within 10s of Close")
		} else if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
		if _, ok := within(ln.(*ConnListener).Listener().Closed(), 5*time.Second); !ok {
			t.Error("the listener's descriptor was not closed within 5s")
		}
		shutdown(t, g)
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.bad) > 0 {
			t.Errorf("the server served connections that are not the adapter's: %v", f.bad)
		}
	})
	return f
}

// connState is the server's ConnState hook.
func (f *httpServer) connState(c net.Conn, s http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s == http.StateNew {
		f.news++
		f.order = append(f.order, c)
		under := c
		if tc, ok := c.(*tls.Conn); ok {
			under = tc.NetConn()
		}
		if _, ok := under.(*Conn); !ok {
			f.bad = append(f.bad, fmt.Sprintf("%T", under))
		}
	}
	f.states[c] = s
}

// dial connects to the server via how: viaLoop with DialConn on the
// server's group, viaNet with the transport's other dial.
func (f *httpServer) dial(ctx context.Context, how string) (net.Conn, error) {
	addr := f.tr.target(f.t, f.ln.Addr())
	if how == viaLoop {
		return f.g.DialConn(ctx, addr)
	}
	return f.tr.dial(ctx, addr)
}

// accepted is the number of connections the server has taken.
func (f *httpServer) accepted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.news
}

// waitStates polls, for up to 10s, until ok holds of the connections' states
// in arrival order.
func (f *httpServer) waitStates(what string, ok func([]http.ConnState) bool) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		states := make([]http.ConnState, len(f.order))
		for i, c := range f.order {
			states[i] = f.states[c]
		}
		f.mu.Unlock()
		if ok(states) {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the server's connections are %v after 10s; waited for %s", states, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// allClosed reports whether every connection is closed.
func allClosed(states []http.ConnState) bool {
	for _, s := range states {
		if s != http.StateClosed {
			return false
		}
	}
	return true
}

// httpClient is an http.Client whose Transport dials the server via how
// (httpServer.dial) and counts its dials.
type httpClient struct {
	*http.Client
	tr    *http.Transport
	dials atomic.Int32
}

// client is a new httpClient of f's, with TLS when tlsConf is set (and then
// HTTP/2 if the server offers it); the test's cleanup closes its idle
// connections.
func (f *httpServer) client(how string, tlsConf *tls.Config) *httpClient {
	c := &httpClient{}
	c.tr = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c.dials.Add(1)
			return f.dial(ctx, how)
		},
		TLSClientConfig:    tlsConf,
		ForceAttemptHTTP2:  tlsConf != nil,
		DisableCompression: true,
	}
	c.Client = &http.Client{Transport: c.tr, Timeout: 2 * time.Minute}
	f.t.Cleanup(c.tr.CloseIdleConnections)
	return c
}

// httpAnswer is what a GET made in the background got.
type httpAnswer struct {
	code  int
	proto string
	body  string
	err   error
}

// getAsync does a GET of url in its own goroutine; the answer, whole body
// included, arrives on the returned channel.
func (c *httpClient) getAsync(url string) <-chan httpAnswer {
	answers := make(chan httpAnswer, 1)
	go func() {
		resp, err := c.Get(url)
		if err != nil {
			answers <- httpAnswer{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers <- httpAnswer{resp.StatusCode, resp.Proto, string(body), err}
	}()
	return answers
}

// get does a GET of url and returns the status and the whole body.
func (c *httpClient) get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// clientKinds are the ways the tests' clients dial a ListenConn server.
var clientKinds = []struct{ name, how string }{{"DialConn", viaLoop}, {"net.Dial", viaNet}}

// forHTTP runs f as subtests network/client for TCP and Unix and both
// clientKinds, each with noLeaks and checkFDs.
func forHTTP(t *testing.T, f func(t *testing.T, network, how string)) {
	for _, network := range []string{"tcp", "unix"} {
		for _, k := range clientKinds {
			t.Run(network+"/"+k.name, func(t *testing.T) {
				noLeaks(t)
				checkFDs(t)
				f(t, network, k.how)
			})
		}
	}
}

// describe answers "METHOD PATH BODYLEN" after reading the whole body.
var describe = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(body))
})

// TestConnHTTPKeepAlive: 100 requests, GETs and POSTs with bodies, go one
// after the other over a single connection: the client dials once, every
// request after the first reports a reused connection (httptrace), the server
// accepts one connection, and every answer is the right one.
func TestConnHTTPKeepAlive(t *testing.T) {
	forHTTP(t, func(t *testing.T, network, how string) {
		checkKeepAlive(t, startHTTP(t, network, describe, nil), how, 100)
	})
}

// checkKeepAlive makes requests (GETs and POSTs) one after the other on f
// (serving describe) with a client dialing via how, and checks that they all
// went over one connection and got their answers.
func checkKeepAlive(t *testing.T, f *httpServer, how string, requests int) {
	t.Helper()
	c := f.client(how, nil)
	// One connection at most: a request made before the last answer's
	// connection is back in the pool (net/http puts it back from its own
	// goroutine) waits for it instead of dialing, however loaded the machine.
	c.tr.MaxConnsPerHost = 1
	for i := range requests {
		method, body := http.MethodGet, ""
		if i%2 == 1 {
			method, body = http.MethodPost, strings.Repeat("k", 1+i*997)
		}
		var got, reused bool
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { got, reused = true, info.Reused }}
		ctx := httptrace.WithClientTrace(context.Background(), trace)
		req, err := http.NewRequestWithContext(ctx, method, f.base+"/r/"+strconv.Itoa(i), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("request %d: reading the body: %v", i, err)
		}
		if want := fmt.Sprintf("%s /r/%d %d", method, i, len(body)); resp.StatusCode != http.StatusOK || string(answer) != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, answer, want)
		}
		if !got || reused != (i > 0) {
			t.Fatalf("request %d: got a connection %v, reused %v; want a reused connection for every request but the first", i, got, reused)
		}
	}
	if d, a := c.dials.Load(), f.accepted(); d != 1 || a != 1 {
		t.Fatalf("the client dialed %d times and the server accepted %d connections; want 1 and 1", d, a)
	}
}

// pieces yields stream(seed, n) in pieces of varied sizes (1 byte to 64 KiB)
// and has no length, so that net/http sends it chunked. At the end it sets
// trailer's X-Digest, if trailer is not nil, to the digest of what it yielded.
type pieces struct {
	r       io.Reader
	next    int
	h       hash.Hash
	trailer http.Header
}

func newPieces(seed uint64, n int64, trailer http.Header) *pieces {
	return &pieces{r: stream(seed, n), next: 1, h: sha256.New(), trailer: trailer}
}

func (p *pieces) Read(b []byte) (int, error) {
	size := min(len(b), p.next)
	p.next = p.next*7%(64<<10) + 1
	n, err := p.r.Read(b[:size])
	p.h.Write(b[:n])
	if err == io.EOF && p.trailer != nil {
		p.trailer.Set("X-Digest", p.sum())
	}
	return n, err
}

// sum is the digest of what p yielded so far.
func (p *pieces) sum() string { return hex.EncodeToString(p.h.Sum(nil)) }

// chunkedEcho requires a chunked request body with an X-Digest trailer that
// matches the body, and answers with a chunked body, flushed in pieces, of
// stream(seed, n) for the query's seed and n, with the digests of the request
// body in a header and of its own body in a trailer.
var chunkedEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" || r.ContentLength != -1 {
		http.Error(w, fmt.Sprintf("transfer encoding %q, length %d: want chunked", r.TransferEncoding, r.ContentLength), http.StatusBadRequest)
		return
	}
	got, n, err := digest(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if sent := r.Trailer.Get("X-Digest"); sent != got {
		http.Error(w, fmt.Sprintf("body digest %s, trailer says %q", got, sent), http.StatusBadRequest)
		return
	}
	seed, _ := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
	size, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	w.Header().Set("Trailer", "X-Digest")
	w.Header().Set("X-Request-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(http.StatusOK)
	body := newPieces(seed, size, nil)
	buf := make([]byte, 64<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
		if err != nil {
			break
		}
	}
	w.Header().Set("X-Digest", body.sum())
})

// TestConnHTTPChunked: chunked request bodies (with a trailer) of 1 byte,
// 100 kB and 3 MiB reach the handler whole, and chunked response bodies
// (flushed in pieces, with a trailer) come back whole, three rounds on one
// connection.
func TestConnHTTPChunked(t *testing.T) {
	forHTTP(t, func(t *testing.T, network, how string) {
		f := startHTTP(t, network, chunkedEcho, nil)
		c := f.client(how, nil)
		rounds := []struct{ up, down int64 }{{1, 1}, {100_000, 200_000}, {3 << 20, 4 << 20}}
		for i, r := range rounds {
			trailer := http.Header{"X-Digest": nil}
			body := newPieces(uint64(i), r.up, trailer)
			url := fmt.Sprintf("%s/chunked?seed=%d&n=%d", f.base, 100+i, r.down)
			req, err := http.NewRequest(http.MethodPost, url, body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = -1
			req.Trailer = trailer
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
			got, n, err := digest(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("round %d: reading the body: %v", i, err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("round %d: status %d", i, resp.StatusCode)
			}
			if resp.Header.Get("X-Request-Length") != strconv.FormatInt(r.up, 10) {
				t.Fatalf("round %d: the server read %s bytes of the %d sent", i, resp.Header.Get("X-Request-Length"), r.up)
			}
			if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || resp.ContentLength != -1 {
				t.Fatalf("round %d: response transfer encoding %q, length %d; want chunked", i, resp.TransferEncoding, resp.ContentLength)
			}
			if want := streamDigest(uint64(100+i), r.down); n != r.down || got != want || resp.Trailer.Get("X-Digest") != want {
				t.Fatalf("round %d: read %d bytes, digest %s, trailer %q; want %d bytes, digest %s", i, n, got, resp.Trailer.Get("X-Digest"), r.down, want)
			}
		}
		if d, a := c.dials.Load(), f.accepted(); d != 1 || a != 1 {
			t.Fatalf("the client dialed %d times and the server accepted %d connections; want 1 and 1", d, a)
		}
	})
}

// sums answers a request's body digest and length; GET /stream?seed=&n=
// answers stream(seed, n) with a Content-Length.
var sums = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/stream" {
		seed, _ := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		io.Copy(w, stream(seed, n))
		return
	}
	d, n, err := digest(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %d %d", d, n, r.ContentLength)
})

const largeBody = 32 << 20

// TestConnHTTPLargeUpload: a 32 MiB body, streamed with a Content-Length,
// reaches the handler whole (its digest computed server-side), twice on one
// connection.
func TestConnHTTPLargeUpload(t *testing.T) {
	forHTTP(t, func(t *testing.T, network, how string) {
		checkUpload(t, startHTTP(t, network, sums, nil), how, largeBody)
	})
}

// checkUpload makes two uploads of size bytes on f (serving sums) over one
// connection with a client dialing via how and checks that they are whole.
func checkUpload(t *testing.T, f *httpServer, how string, size int64) {
	t.Helper()
	c := f.client(how, nil)
	for seed := uint64(1); seed <= 2; seed++ {
		req, err := http.NewRequest(http.MethodPut, f.base+"/sum", stream(seed, size))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%s %d %d", streamDigest(seed, size), size, size); resp.StatusCode != http.StatusOK || string(answer) != want {
			t.Fatalf("upload %d: %d %q, want 200 %q", seed, resp.StatusCode, answer, want)
		}
	}
	if d := c.dials.Load(); d != 1 {
		t.Fatalf("the client dialed %d times, want 1", d)
	}
}

// TestConnHTTPLargeDownload: a 32 MiB response body comes back whole, with its
// Content-Length, twice on one connection.
func TestConnHTTPLargeDownload(t *testing.T) {
	forHTTP(t, func(t *testing.T, network, how string) {
		checkDownload(t, startHTTP(t, network, sums, nil), how, largeBody)
	})
}

// checkDownload makes two downloads of size bytes on f (serving sums) over
// one connection with a client dialing via how and checks that they are whole.
func checkDownload(t *testing.T, f *httpServer, how string, size int64) {
	t.Helper()
	c := f.client(how, nil)
	for seed := uint64(1); seed <= 2; seed++ {
		resp, err := c.Get(fmt.Sprintf("%s/stream?seed=%d&n=%d", f.base, seed, size))
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := digest(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("download %d: after %d bytes: %v", seed, n, err)
		}
		if want := streamDigest(seed, size); resp.StatusCode != http.StatusOK || resp.ContentLength != size || n != size || got != want {
			t.Fatalf("download %d: status %d, length %d, read %d bytes, digest %s; want 200, %d bytes, digest %s", seed, resp.StatusCode, resp.ContentLength, n, got, size, want)
		}
	}
	if d := c.dials.Load(); d != 1 {
		t.Fatalf("the client dialed %d times, want 1", d)
	}
}

// readResult is what a handler's read or write of a body came to.
type readResult struct {
	n   int64
	err error
}

// countingReader counts what it reads and closes half once it passed mark.
type countingReader struct {
	r    io.Reader
	n    int64
	mark int64
	half chan struct{}
	once sync.Once
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n >= c.mark {
		c.once.Do(func() { close(c.half) })
	}
	return n, err
}

// TestConnHTTPClientGoneMidBody: a client announces a 32 MiB body, sends 1
// MiB and goes away (closes, or over TCP with package net also resets). The
// handler's read of the body fails after what was sent, the server closes
// that connection, keeps serving (the next client's request succeeds) and
// leaves no descriptor behind.
func TestConnHTTPClientGoneMidBody(t *testing.T) {
	forHTTP(t, func(t *testing.T, network, how string) {
		modes := []string{"close"}
		if network == "tcp" && how == viaNet {
			modes = append(modes, "reset")
		}
		results := make(chan readResult, 1)
		var mu sync.Mutex
		var half chan struct{}
		f := startHTTP(t, network, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/upload" {
				io.WriteString(w, "ok")
				return
			}
			mu.Lock()
			cr := &countingReader{r: r.Body, mark: 512 << 10, half: half}
			mu.Unlock()
			_, err := io.Copy(io.Discard, cr)
			results <- readResult{cr.n, err}
		}), nil)
		c := f.client(how, nil)
		for i, mode := range modes {
			mu.Lock()
			half = make(chan struct{})
			h := half
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			raw, err := f.dial(ctx, how)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fmt.Fprintf(raw, "POST /upload HTTP/1.1\r\nHost: fsm.test\r\nContent-Length: %d\r\n\r\n", largeBody); err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(raw, stream(9, 1<<20)); err != nil {
				t.Fatal(err)
			}
			if _, ok := within(h, 10*time.Second); !ok {
				t.Fatalf("%s: the handler did not read half a MiB of the body within 10s", mode)
			}
			if mode == "reset" {
				raw.(*net.TCPConn).SetLinger(0)
			}
			raw.Close()
			res, ok := within(results, 10*time.Second)
			if !ok {
				t.Fatalf("%s: the handler's read of the body did not end within 10s of the client going away", mode)
			}
			if res.err == nil || res.n > 1<<20 {
				t.Fatalf("%s: the handler read %d bytes of the 1 MiB sent, then %v; want an error", mode, res.n, res.err)
			}
			t.Logf("%s: the handler read %d bytes, then %v", mode, res.n, res.err)
			f.waitStates("the abandoned connection closed", func(s []http.ConnState) bool { return len(s) == 1+2*i && s[2*i] == http.StateClosed })
			if code, body := c.get(t, f.base+"/next"); code != http.StatusOK || body != "ok" {
				t.Fatalf("%s: the next client got %d %q, want 200 ok", mode, code, body)
			}
			c.tr.CloseIdleConnections()
			f.waitStates("every connection closed", allClosed)
		}
		select {
		case err := <-f.served:
			t.Fatalf("Serve returned %v", err)
		default:
		}
	})
}

// TestConnHTTPClientGoneMidResponse: a client reads 1 MiB of an endless
// response and closes its body (and so the connection). The handler's Write
// fails, the server closes the connection and serves the next client.
func TestConnHTTPClientGoneMidResponse(t *testing.T) {
	forHTTP(t, func(t *testing.T, network, how string) {
		const limit = 1 << 30
		results := make(chan readResult, 1)
		f := startHTTP(t, network, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/endless" {
				io.WriteString(w, "ok")
				return
			}
			buf := make([]byte, 64<<10)
			var n int64
			for n < limit {
				m, err := w.Write(buf)
				n += int64(m)
				if err != nil {
					results <- readResult{n, err}
					return
				}
			}
			results <- readResult{n, nil}
		}), nil)
		c := f.client(how, nil)
		resp, err := c.Get(f.base + "/endless")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		res, ok := within(results, 20*time.Second)
		if !ok {
			t.Fatal("the handler's writes did not fail within 20s of the client going away")
		}
		if res.err == nil {
			t.Fatalf("the handler wrote %d bytes to a client that went away after 1 MiB", res.n)
		}
		t.Logf("the handler wrote %d bytes, then %v", res.n, res.err)
		f.waitStates("the abandoned connection closed", func(s []http.ConnState) bool { return len(s) == 1 && s[0] == http.StateClosed })
		if code, body := c.get(t, f.base+"/next"); code != http.StatusOK || body != "ok" {
			t.Fatalf("the next request got %d %q, want 200 ok", code, body)
		}
	})
}

// blocking is a handler whose /slow requests report on entered and wait for
// release before answering "done"; other paths answer "ok" at once.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func newBlocking() *blocking {
	return &blocking{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (b *blocking) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/slow" {
		io.WriteString(w, "ok")
		return
	}
	b.entered <- struct{}{}
	select {
	case <-b.release:
		io.WriteString(w, strings.Repeat("done", 100_000))
	case <-time.After(30 * time.Second):
		http.Error(w, "never released", http.StatusInternalServerError)
	}
}

// TestConnHTTPShutdown: Server.Shutdown with a request in flight and a
// keep-alive connection idle closes the idle connection and the listener (a
// new dial fails) at once, waits for the request, whose whole answer reaches
// the client, and then returns nil with every connection closed.
func TestConnHTTPShutdown(t *testing.T) {
	forHTTP(t, func(t *testing.T, network, how string) {
		b := newBlocking()
		f := startHTTP(t, network, b, nil)
		idle := f.client(how, nil)
		if code, body := idle.get(t, f.base+"/ok"); code != http.StatusOK || body != "ok" {
			t.Fatalf("GET /ok: %d %q", code, body)
		}
		busy := f.client(how, nil)
		answers := busy.getAsync(f.base + "/slow")
		if _, ok := within(b.entered, 10*time.Second); !ok {
			t.Fatal("the slow request did not reach its handler within 10s")
		}
		shut := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			shut <- f.srv.Shutdown(ctx)
		}()
		f.waitStates("the idle connection closed and the busy one still active", func(s []http.ConnState) bool {
			return len(s) == 2 && s[0] == http.StateClosed && s[1] == http.StateActive
		})
		if err, ok := within(f.served, 10*time.Second); !ok || !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: returned %v (%v), want http.ErrServerClosed at once", err, ok)
		}
		f.served <- http.ErrServerClosed // for the cleanup
		if _, ok := within(f.ln.(*ConnListener).Listener().Closed(), 10*time.Second); !ok {
			t.Fatal("the listener's descriptor was not closed within 10s of Shutdown")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		late, err := f.dial(ctx, how)
		cancel()
		if err == nil {
			late.Close()
			t.Fatal("dialed the server after its listener closed")
		}
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v with a request in flight", err)
		default:
		}
		close(b.release)
		a, ok := within(answers, 20*time.Second)
		if !ok {
			t.Fatal("the slow request did not complete within 20s of its release")
		}
		if a.err != nil || a.code != http.StatusOK || a.body != strings.Repeat("done", 100_000) {
			t.Fatalf("the in-flight request: %d, %d bytes, %v; want 200 and its whole body", a.code, len(a.body), a.err)
		}
		if err, ok := within(shut, 20*time.Second); !ok || err != nil {
			t.Fatalf("Shutdown: %v (returned: %v), want nil once the request completed", err, ok)
		}
		f.waitStates("every connection closed", allClosed)
		if busy.dials.Load() != 1 || f.accepted() != 2 {
			t.Fatalf("the busy client dialed %d times, the server accepted %d connections; want 1 and 2", busy.dials.Load(), f.accepted())
		}
	})
}

// TestConnHTTPServerClose: Server.Close with a request in flight and a
// connection idle closes both at once: the in-flight request's context is
// canceled (its connection's pending read ends), the client's request fails,
// Serve returns http.ErrServerClosed, and every connection ends closed.
func TestConnHTTPServerClose(t *testing.T) {
	forHTTP(t, func(t *testing.T, network, how string) {
		entered := make(chan struct{}, 1)
		canceled := make(chan error, 1)
		f := startHTTP(t, network, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/hang" {
				io.WriteString(w, "ok")
				return
			}
			entered <- struct{}{}
			select {
			case <-r.Context().Done():
				canceled <- r.Context().Err()
			case <-time.After(30 * time.Second):
				canceled <- errors.New("the request's context was not canceled within 30s")
			}
		}), nil)
		idle := f.client(how, nil)
		if code, body := idle.get(t, f.base+"/ok"); code != http.StatusOK || body != "ok" {
			t.Fatalf("GET /ok: %d %q", code, body)
		}
		busy := f.client(how, nil)
		failed := make(chan error, 1)
		go func() {
			resp, err := busy.Get(f.base + "/hang")
			if err == nil {
				_, err = io.ReadAll(resp.Body) // nil, the test's failure, if the whole answer came
				resp.Body.Close()
			}
			failed <- err
		}()
		if _, ok := within(entered, 10*time.Second); !ok {
			t.Fatal("the request did not reach its handler within 10s")
		}
		if err := f.srv.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err, ok := within(canceled, 10*time.Second); !ok || !errors.Is(err, context.Canceled) {
			t.Fatalf("the in-flight request's context: %v (ended: %v), want context.Canceled", err, ok)
		}
		if err, ok := within(failed, 10*time.Second); !ok || err == nil {
			t.Fatalf("the in-flight request: %v (ended: %v), want an error", err, ok)
		}
		f.waitStates("every connection closed", func(s []http.ConnState) bool { return len(s) == 2 && allClosed(s) })
		if err, ok := within(f.served, 10*time.Second); !ok || !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve: %v (returned: %v), want http.ErrServerClosed", err, ok)
		}
		f.served <- http.ErrServerClosed // for the cleanup
	})
}
