// Command echo-fsmkernel is the benchmark's echo server over one fsmkernel loop.
//
// Usage:
//
//	echo-fsmkernel [-addr host:port]
//
// It prints "pid PID addr ADDRESS" once it listens and serves until SIGINT or
// SIGTERM. Run it with GOMAXPROCS=1 under taskset to compare one core's worth.
package main

import (
	"os"

	"github.com/fsmkernel/fsmkernel/bench/echo"
)

func main() {
	os.Exit(echo.Main("echo-fsmkernel", echo.StartFsmkernel, os.Args[1:], os.Stdout, os.Stderr))
}
