// Package grpcbench serves gRPC over fsmkernel's Group.ListenConn and over
// net.Listen, for the benchmark and tests of issue 15.
//
// The service, fsmkernel.bench.Echo, is written by hand, with no generated
// code and no protobuf: its messages are raw bytes, marshalled by Codec (a
// grpc encoding.CodecV2 that copies them as they are). It has two methods:
//
//	Ping    unary: answers the request's bytes
//	Stream  bidirectional: answers each message with its bytes, until the
//	        client closes its side
//
// Servers made by NewServer and clients made by NewClient force Codec, so
// nothing is registered globally.
package grpcbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"

	"github.com/fsmkernel/fsmkernel/loop"
)

// Codec is the service's encoding: a message is a *[]byte, sent as it is.
type Codec struct{}

// Name is the content-subtype: application/grpc+fsmkernel-raw.
func (Codec) Name() string { return "fsmkernel-raw" }

// Marshal sends *v without copying it: *v must not change until gRPC is done
// with the message, which may be after SendMsg returns, as grpc.ClientStream
// says.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	p, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("grpcbench: cannot marshal %T, want *[]byte", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*p)}, nil
}

// Unmarshal copies the message into *v, reusing its capacity.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("grpcbench: cannot unmarshal into %T, want *[]byte", v)
	}
	n := data.Len()
	if cap(*p) < n {
		*p = make([]byte, n)
	}
	*p = (*p)[:n]
	data.CopyTo(*p)
	return nil
}

const (
	service      = "fsmkernel.bench.Echo"
	pingMethod   = "/" + service + "/Ping"
	streamMethod = "/" + service + "/Stream"
)

var streamDesc = grpc.StreamDesc{
	StreamName:    "Stream",
	Handler:       serveStream,
	ServerStreams: true,
	ClientStreams: true,
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: service,
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Ping", Handler: servePing}},
	Streams:     []grpc.StreamDesc{streamDesc},
}

func servePing(_ any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	var req []byte
	if err := dec(&req); err != nil {
		return nil, err
	}
	echo := func(_ context.Context, req any) (any, error) { return req, nil }
	if interceptor == nil {
		return echo(ctx, &req)
	}
	return interceptor(ctx, &req, &grpc.UnaryServerInfo{FullMethod: pingMethod}, echo)
}

func serveStream(_ any, stream grpc.ServerStream) error {
	for {
		// A fresh buffer for each message: SendMsg may return before the
		// transport has copied the last one (Codec does not copy).
		var msg []byte
		if err := stream.RecvMsg(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if err := stream.SendMsg(&msg); err != nil {
			return err
		}
	}
}

// NewServer returns a gRPC server with the Echo service, using Codec.
func NewServer(opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(append([]grpc.ServerOption{grpc.ForceServerCodecV2(Codec{})}, opts...)...)
	s.RegisterService(&serviceDesc, nil)
	return s
}

// NewClient returns a client of target without transport security, using
// Codec for every call.
func NewClient(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.NewClient(target, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(Codec{})),
	}, opts...)...)
}

// Ping makes one unary call and returns the answer in resp, reusing its
// capacity.
func Ping(ctx context.Context, cc *grpc.ClientConn, req []byte, resp *[]byte) error {
	return cc.Invoke(ctx, pingMethod, &req, resp)
}

// Stream opens a bidirectional stream: each message sent (SendMsg of a
// *[]byte) comes back to RecvMsg.
func Stream(ctx context.Context, cc *grpc.ClientConn) (grpc.ClientStream, error) {
	return cc.NewStream(ctx, &streamDesc, streamMethod)
}

// Listeners are the kinds of listener Listen knows.
var Listeners = []string{"net", "fsmkernel"}

// Listen listens on addr with net.ListenTCP ("net") or with ListenConn on a
// new group of one loop ("fsmkernel"); the returned function closes that
// group, and must be called once the listener is no longer served.
func Listen(kind string, addr *net.TCPAddr) (net.Listener, func(), error) {
	switch kind {
	case "net":
		ln, err := net.ListenTCP("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		return ln, func() {}, nil
	case "fsmkernel":
		g := loop.NewGroup(1, nil)
		ln, err := g.ListenConn(addr)
		if err != nil {
			g.Close()
			return nil, nil, err
		}
		return ln, func() { g.Close() }, nil
	}
	return nil, nil, fmt.Errorf("grpcbench: listener %q: want net or fsmkernel", kind)
}
