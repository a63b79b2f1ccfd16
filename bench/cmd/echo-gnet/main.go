// Command echo-gnet is the benchmark's echo server over one gnet v2 event loop.
//
// Usage:
//
//	echo-gnet [-addr host:port]
//
// It prints "pid PID addr ADDRESS" once it listens and serves until SIGINT or
// SIGTERM. Run it with GOMAXPROCS=1 under taskset to compare one core's worth.
package main

import (
	"os"

	"github.com/fsmkernel/fsmkernel/bench/echo"
)

func main() {
	os.Exit(echo.Main("echo-gnet", echo.StartGnet, os.Args[1:], os.Stdout, os.Stderr))
}
