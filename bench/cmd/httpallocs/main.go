// Command httpallocs counts the allocations per request of net/http served over
// net.Listen and over ListenConn, in one process, with a client that writes a
// canned keep-alive GET and reads the whole response into a fixed buffer (it
// allocates nothing per request itself).
package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/fsmkernel/fsmkernel/loop"
)

func main() {
	for _, kind := range []string{"net", "fsmkernel", "net", "fsmkernel"} {
		n, err := measure(kind, 20000)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%-10s %.1f allocs/request\n", kind, n)
	}
}

func measure(kind string, requests int) (float64, error) {
	var ln net.Listener
	var err error
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if kind == "net" {
		ln, err = net.ListenTCP("tcp", addr)
	} else {
		ln, err = loop.NewGroup(1, nil).ListenConn(addr)
	}
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	body := bytes.Repeat([]byte("a"), 1024)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 4096)
	one := func() error {
		if _, err := c.Write(req); err != nil {
			return err
		}
		got := 0
		for {
			n, err := c.Read(buf[got:])
			if err != nil {
				return err
			}
			got += n
			if i := bytes.Index(buf[:got], []byte("\r\n\r\n")); i >= 0 && got-i-4 >= len(body) {
				return nil
			}
		}
	}
	for range 1000 {
		if err := one(); err != nil {
			return 0, err
		}
	}
	if os.Getenv("HTTPALLOCS_PROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	for range requests {
		if err := one(); err != nil {
			return 0, err
		}
	}
	runtime.ReadMemStats(&b)
	if kind == "fsmkernel" && os.Getenv("HTTPALLOCS_PROFILE") != "" {
		f, _ := os.Create(os.Getenv("HTTPALLOCS_PROFILE"))
		pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
	return float64(b.Mallocs-a.Mallocs) / float64(requests), nil
}
