package loop

// Accessors for the tests of package loop_test, which drive the loop through
// package looptest (it imports loop, so those tests cannot be internal). This
// file is compiled only for tests.

// ChannelFD returns the descriptor number of c's socket.
func ChannelFD(c *Channel) int { return c.reg.fd.Fd() }
