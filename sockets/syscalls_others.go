//go:build !linux && !darwin && !freebsd

package sockets

import (
	"fmt"
	"net"
	"runtime"
)

// errNotImplemented is every result on a system this package does not support.
var errNotImplemented = fmt.Errorf("sockets: not implemented on %s", runtime.GOOS)

const (
	defaultBacklog = 128
	sockStream     = 1
)

// System returns system calls that all fail: this system is not supported.
func System() Syscalls { return system{} }

type system struct{}

func (system) Socket(Family) (int, error)              { return -1, errNotImplemented }
func (system) Bind(int, net.Addr) error                { return errNotImplemented }
func (system) Listen(int, int) error                   { return errNotImplemented }
func (system) Accept(int) (int, net.Addr, error)       { return -1, nil, errNotImplemented }
func (system) Connect(int, net.Addr) error             { return errNotImplemented }
func (system) Read(int, []byte) (int, error)           { return 0, errNotImplemented }
func (system) Write(int, []byte) (int, error)          { return 0, errNotImplemented }
func (system) Writev(int, [][]byte) (int, error)       { return 0, errNotImplemented }
func (system) Shutdown(int, ShutdownHow) error         { return errNotImplemented }
func (system) Close(int) error                         { return errNotImplemented }
func (system) GetsockoptInt(int, SockOpt) (int, error) { return 0, errNotImplemented }
func (system) SetsockoptInt(int, SockOpt, int) error   { return errNotImplemented }
func (system) Getsockname(int) (net.Addr, error)       { return nil, errNotImplemented }
func (system) Getpeername(int) (net.Addr, error)       { return nil, errNotImplemented }
func (system) SetNonblock(int) error                   { return errNotImplemented }
func (system) DupCloexec(int) (int, error)             { return -1, errNotImplemented }
func (system) Unlink(string) error                     { return errNotImplemented }
