// Command httpserver is the server side of the HTTP benchmark: net/http serving
// GET with a fixed body, over net.Listen or over fsmkernel's ListenConn, plain
// or over crypto/tls (a self-signed certificate made at start). It prints its
// address on stdout once it accepts, then serves until killed.
//
// Usage, from bench/:
//
//	go run ./cmd/httpserver [-listener net|fsmkernel] [-tls] [-body 1024] [-addr 127.0.0.1:0]
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/fsmkernel/fsmkernel/loop"
)

func main() {
	listener := flag.String("listener", "net", "net (net.Listen) or fsmkernel (Group.ListenConn)")
	useTLS := flag.Bool("tls", false, "serve HTTPS with a self-signed certificate")
	size := flag.Int("body", 1024, "response body size in bytes")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	if err := run(*listener, *useTLS, *size, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "httpserver:", err)
		os.Exit(1)
	}
}

func run(listener string, useTLS bool, size int, addr string) error {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return err
	}
	var ln net.Listener
	switch listener {
	case "net":
		ln, err = net.ListenTCP("tcp", tcp)
	case "fsmkernel":
		ln, err = loop.NewGroup(1, nil).ListenConn(tcp)
	default:
		return fmt.Errorf("-listener %q: want net or fsmkernel", listener)
	}
	if err != nil {
		return err
	}
	if useTLS {
		cert, err := selfSigned()
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	}
	body := make([]byte, size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	})
	fmt.Println(ln.Addr())
	return (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
