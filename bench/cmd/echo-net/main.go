// Command echo-net is the benchmark's echo server over Go's net, a goroutine per connection.
//
// Usage:
//
//	echo-net [-addr host:port]
//
// It prints "pid PID addr ADDRESS" once it listens and serves until SIGINT or
// SIGTERM. Run it with GOMAXPROCS=1 under taskset to compare one core's worth.
package main

import (
	"os"

	"github.com/fsmkernel/fsmkernel/bench/echo"
)

func main() {
	os.Exit(echo.Main("echo-net", echo.StartNet, os.Args[1:], os.Stdout, os.Stderr))
}
