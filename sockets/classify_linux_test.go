package sockets_test

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fsmkernel/fsmkernel/gen"
	"github.com/fsmkernel/fsmkernel/sockets"
	"github.com/fsmkernel/fsmkernel/statemachine"
)

// classifiers calls each generated classifier generically: the outcome's number.
var classifiers = map[string]func(n int, err error) int{
	"read":          func(n int, err error) int { return int(sockets.ClassifyRead(n, err)) },
	"write":         func(_ int, err error) int { return int(sockets.ClassifyWrite(err)) },
	"accept":        func(_ int, err error) int { return int(sockets.ClassifyAccept(err)) },
	"connect":       func(_ int, err error) int { return int(sockets.ClassifyConnect(err)) },
	"close":         func(_ int, err error) int { return int(sockets.ClassifyClose(err)) },
	"pollerWait":    func(n int, err error) int { return int(sockets.ClassifyPollerWait(n, err)) },
	"pollerControl": func(_ int, err error) int { return int(sockets.ClassifyPollerControl(err)) },
}

// TestClassifiersFollowTheSpec reads spec/errno.yaml and checks every errno it
// names, on Linux, against the generated functions, and that an errno it does
// not name takes the default.
func TestClassifiersFollowTheSpec(t *testing.T) {
	var srcs []gen.Source
	for _, p := range []string{"../spec/outcomes.yaml", "../spec/errno.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, gen.Source{Path: p, Data: b})
	}
	pkg, err := gen.Load(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]unix.Errno{}
	for e := unix.Errno(1); e < 200; e++ {
		if n := unix.ErrnoName(e); n != "" {
			byName[n] = e
		}
	}
	// Aliases ErrnoName does not return: they share a value with another name.
	byName["EWOULDBLOCK"] = unix.EWOULDBLOCK
	byName["EOPNOTSUPP"] = unix.EOPNOTSUPP
	byName["EDEADLOCK"] = unix.EDEADLOCK
	if len(pkg.Classifiers) != len(classifiers) {
		t.Fatalf("spec has %d classifiers, the test knows %d", len(pkg.Classifiers), len(classifiers))
	}
	for _, c := range pkg.Classifiers {
		fn, ok := classifiers[c.Name]
		if !ok {
			t.Fatalf("no test entry for classifier %q", c.Name)
		}
		values := pkg.Outcomes[c.Outcome].Values
		check := func(what string, n int, err error, want int) {
			t.Helper()
			if got := fn(n, err); got != want {
				t.Errorf("%s %s: got %s, want %s", c.Name, what, values[got].Name, values[want].Name)
			}
		}
		check("success", 1, nil, c.Success)
		if c.Zero >= 0 {
			check("zero", 0, nil, c.Zero)
		}
		listed := map[string]bool{}
		for _, list := range [][]gen.ErrnoOutcome{c.Errors, c.Linux} {
			for _, e := range list {
				errno, ok := byName[e.Errno]
				if !ok {
					t.Errorf("%s: errno %s is unknown on Linux", c.Name, e.Errno)
					continue
				}
				listed[e.Errno] = true
				check(e.Errno, -1, errno, e.Outcome)
				check(e.Errno+" wrapped", -1, os.NewSyscallError("op", errno), e.Outcome)
			}
		}
		if !listed["EDOM"] {
			check("EDOM (unlisted)", -1, unix.EDOM, c.Default)
		}
	}
}

// TestClassifyRealResults feeds results the kernel really returns.
func TestClassifyRealResults(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := unix.Read(fds[0], buf)
	if got := sockets.ClassifyRead(n, err); got != statemachine.ReadResultWouldBlock {
		t.Errorf("empty read: %v (%d, %v)", got, n, err)
	}
	unix.Write(fds[1], []byte("hi"))
	n, err = unix.Read(fds[0], buf)
	if got := sockets.ClassifyRead(n, err); got != statemachine.ReadResultData {
		t.Errorf("read with data: %v (%d, %v)", got, n, err)
	}
	unix.Close(fds[1])
	n, err = unix.Read(fds[0], buf)
	if got := sockets.ClassifyRead(n, err); got != statemachine.ReadResultEof {
		t.Errorf("read after peer close: %v (%d, %v)", got, n, err)
	}
	_, err = unix.SendmsgN(fds[0], []byte("x"), nil, nil, unix.MSG_NOSIGNAL)
	if got := sockets.ClassifyWrite(err); got != statemachine.WriteResultBrokenPipe {
		t.Errorf("write to a closed peer: %v (%v)", got, err)
	}
	err = unix.Close(fds[0])
	if got := sockets.ClassifyClose(err); got != statemachine.CloseResultClosed {
		t.Errorf("close: %v (%v)", got, err)
	}
	// The number is closed now: the kernel says EBADF.
	n, err = unix.Read(fds[0], buf)
	if got := sockets.ClassifyRead(n, err); got != statemachine.ReadResultDescriptorInvalid {
		t.Errorf("read on a closed number: %v (%d, %v)", got, n, err)
	}
	err = unix.Close(fds[0])
	if got := sockets.ClassifyClose(err); got != statemachine.CloseResultDescriptorInvalid {
		t.Errorf("second close: %v (%v)", got, err)
	}
}
