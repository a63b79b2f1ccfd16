package loop

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The tests of this file run HTTP/2 over TLS over ListenConn: net/http's
// server (ServeTLS, ALPN h2) and its Transport (ForceAttemptHTTP2), dialing
// through DialConn or package net.

// h2Handler answers /wait once concurrent /wait requests are all in their
// handlers at the same time (or 503 after 30s), /sum with the digest of the
// request body, /stream?seed=&n= with stream(seed, n), and anything else with
// "ok". It fails any request that is not HTTP/2.
type h2Handler struct {
	concurrent int
	mu         sync.Mutex
	waiting    int
	all        chan struct{}
	notH2      atomic.Int32
}

func newH2Handler(concurrent int) *h2Handler {
	return &h2Handler{concurrent: concurrent, all: make(chan struct{})}
}

func (h *h2Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 || r.TLS == nil || r.TLS.NegotiatedProtocol != "h2" {
		h.notH2.Add(1)
		http.Error(w, "not HTTP/2 over TLS: "+r.Proto, http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/wait":
		h.mu.Lock()
		h.waiting++
		if h.waiting == h.concurrent {
			close(h.all)
		}
		h.mu.Unlock()
		select {
		case <-h.all:
			io.WriteString(w, "together")
		case <-time.After(30 * time.Second):
			http.Error(w, "the other requests never came", http.StatusServiceUnavailable)
		}
	case "/sum", "/stream":
		sums(w, r)
	default:
		io.WriteString(w, "ok")
	}
}

// TestConnHTTP2: over TLS on ListenConn, with a client dialing through
// DialConn or package net: every response is HTTP/2.0 (ALPN h2); 16 requests
// are in their handlers at once, as streams of one connection; 4 uploads and
// 4 downloads of 4 MiB run at once, whole; the client dials once and the
// server accepts one connection for all of it.
func TestConnHTTP2(t *testing.T) {
	forHTTP(t, func(t *testing.T, network, how string) {
		h := newH2Handler(16)
		checkHTTP2(t, startHTTP(t, network, h, serverTLS("h2", "http/1.1")), h, how, 4<<20)
	})
}

// checkHTTP2 runs, on f serving h over TLS with a client dialing via how, one
// request, then h.concurrent requests that must be in their handlers at once
// and 4 uploads and 4 downloads of size bytes, all at once; it checks that all
// are HTTP/2 on a single connection and get their whole answers.
func checkHTTP2(t *testing.T, f *httpServer, h *h2Handler, how string, size int64) {
	t.Helper()
	c := f.client(how, clientTLS())

	// One request first, so that the connection is HTTP/2 before the
	// concurrent ones (which would otherwise race to dial their own).
	resp, err := c.Get(f.base + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" || string(body) != "ok" {
		t.Fatalf("first response: %s, body %q; want HTTP/2.0 over TLS with ALPN h2", resp.Proto, body)
	}

	type result struct {
		what string
		err  error
	}
	var wg sync.WaitGroup
	results := make(chan result, h.concurrent+8)
	do := func(what string, run func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- result{what, run()}
		}()
	}
	check := func(resp *http.Response, err error) (string, error) {
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		d, _, err := digest(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/2.0" {
			return "", fmt.Errorf("status %d, %s", resp.StatusCode, resp.Proto)
		}
		return d, nil
	}
	for range h.concurrent {
		do("/wait", func() error {
			d, err := check(c.Get(f.base + "/wait"))
			if err == nil && d != mustDigest("together") {
				err = fmt.Errorf("the answer is not \"together\"")
			}
			return err
		})
	}
	for seed := uint64(1); seed <= 4; seed++ {
		do("upload "+strconv.Itoa(int(seed)), func() error {
			req, err := http.NewRequest(http.MethodPut, f.base+"/sum", stream(seed, size))
			if err != nil {
				return err
			}
			req.ContentLength = size
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			answer, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("%s %d %d", streamDigest(seed, size), size, size); err != nil || string(answer) != want || resp.Proto != "HTTP/2.0" {
				return fmt.Errorf("%s %q, %v; want HTTP/2.0 %q", resp.Proto, answer, err, want)
			}
			return nil
		})
		do("download "+strconv.Itoa(int(seed)), func() error {
			d, err := check(c.Get(fmt.Sprintf("%s/stream?seed=%d&n=%d", f.base, 10+seed, size)))
			if err == nil && d != streamDigest(10+seed, size) {
				err = fmt.Errorf("the body's digest differs from the stream's")
			}
			return err
		})
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.err != nil {
			t.Errorf("%s: %v", r.what, r.err)
		}
	}
	if n := h.notH2.Load(); n != 0 {
		t.Errorf("%d requests reached the server other than as HTTP/2 over TLS", n)
	}
	if d, a := c.dials.Load(), f.accepted(); d != 1 || a != 1 {
		t.Fatalf("the client dialed %d times and the server accepted %d connections; want 1 and 1", d, a)
	}
}

// mustDigest is the digest of s.
func mustDigest(s string) string {
	d, _, _ := digest(strings.NewReader(s))
	return d
}

// TestConnHTTP2Shutdown: Server.Shutdown with an HTTP/2 stream in flight
// waits for it: its whole answer reaches the client, then Shutdown returns
// nil with the connection closed.
func TestConnHTTP2Shutdown(t *testing.T) {
	forHTTP(t, func(t *testing.T, network, how string) {
		b := newBlocking()
		f := startHTTP(t, network, b, serverTLS("h2", "http/1.1"))
		c := f.client(how, clientTLS())
		answers := c.getAsync(f.base + "/slow")
		if _, ok := within(b.entered, 10*time.Second); !ok {
			t.Fatal("the request did not reach its handler within 10s")
		}
		shut := make(chan error, 1)
		go func() { shut <- f.srv.Shutdown(t.Context()) }()
		if err, ok := within(f.served, 10*time.Second); !ok {
			t.Fatal("Serve did not return within 10s of Shutdown")
		} else {
			f.served <- err // for the cleanup
		}
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v with a stream in flight", err)
		default:
		}
		close(b.release)
		a, ok := within(answers, 20*time.Second)
		if !ok {
			t.Fatal("the in-flight request did not complete within 20s of its release")
		}
		if a.err != nil || a.proto != "HTTP/2.0" || a.body != strings.Repeat("done", 100_000) {
			t.Fatalf("the in-flight request: %s, %d bytes, %v; want HTTP/2.0 and its whole body", a.proto, len(a.body), a.err)
		}
		if err, ok := within(shut, 20*time.Second); !ok || err != nil {
			t.Fatalf("Shutdown: %v (returned: %v), want nil once the stream completed", err, ok)
		}
		f.waitStates("the connection closed", func(s []http.ConnState) bool { return len(s) == 1 && allClosed(s) })
	})
}
