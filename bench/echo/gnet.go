package echo

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// gnetHandler writes back everything each readable event brings.
type gnetHandler struct {
	gnet.BuiltinEventEngine
	booted chan gnet.Engine
}

func (h *gnetHandler) OnBoot(eng gnet.Engine) gnet.Action {
	h.booted <- eng
	return gnet.None
}

func (h *gnetHandler) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	if _, err := c.Write(buf); err != nil {
		return gnet.Close
	}
	return gnet.None
}

type gnetServer struct {
	eng  gnet.Engine
	addr net.Addr
	done chan error
}

// StartGnet serves the echo on one gnet v2 event loop (no multicore), with
// gnet's defaults otherwise (TCP_NODELAY on, as for the other servers).
func StartGnet(addr string) (Server, error) {
	if _, err := tcpAddr(addr); err != nil {
		return nil, err
	}
	h := &gnetHandler{booted: make(chan gnet.Engine, 1)}
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(h, "tcp://"+addr,
			gnet.WithMulticore(false),
			gnet.WithNumEventLoop(1),
			gnet.WithLogger(quietLogger{}))
	}()
	var eng gnet.Engine
	select {
	case eng = <-h.booted:
	case err := <-done:
		if err == nil {
			err = errors.New("gnet stopped before it booted")
		}
		return nil, err
	}
	s := &gnetServer{eng: eng, done: done}
	a, err := listenerAddr(eng)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.addr = a
	return s, nil
}

// listenerAddr reads the bound address (port 0 resolved) from a duplicate of the
// engine's listener: gnet does not expose it otherwise.
func listenerAddr(eng gnet.Engine) (net.Addr, error) {
	fd, err := eng.Dup()
	if err != nil {
		return nil, fmt.Errorf("gnet listener: %w", err)
	}
	defer syscall.Close(fd)
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("gnet listener: getsockname: %w", err)
	}
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}, nil
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}, nil
	}
	return nil, fmt.Errorf("gnet listener: unexpected address %T", sa)
}

func (s *gnetServer) Addr() net.Addr { return s.addr }

func (s *gnetServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.eng.Stop(ctx); err != nil {
		return err
	}
	return <-s.done
}

// quietLogger drops gnet's debug and info lines (such as its banner) and keeps
// the rest.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any)             {}
func (quietLogger) Infof(string, ...any)              {}
func (quietLogger) Warnf(format string, args ...any)  { log.Printf("gnet: "+format, args...) }
func (quietLogger) Errorf(format string, args ...any) { log.Printf("gnet: "+format, args...) }
func (quietLogger) Fatalf(format string, args ...any) { log.Fatalf("gnet: "+format, args...) }
