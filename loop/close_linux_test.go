package loop

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCloseAfterNumberReused: the channel's descriptor is closed behind the
// loop's back and its number taken by a file the process opens next. Closing
// the channel must not close that file: the epoll_ctl DEL before close(2)
// answers ENOENT (the number no longer names the registered file), and the
// table abandons the number instead of closing it (D2, D4).
func TestCloseAfterNumberReused(t *testing.T) {
	checkFDs(t)
	rec := newRecorder()
	_, ch := socketpairChannel(t, rec, nil)
	wait(t, rec.active, "OnActive")
	settled(t, ch)
	num := ch.reg.fd.Fd()

	path := filepath.Join(t.TempDir(), "other")
	const content = "another owner's file"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Close(num); err != nil { // the out-of-band close
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := int(f.Fd()); got != num {
		// Something else took the number first: put the file there by hand.
		if err := unix.Dup3(got, num, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(num)
		t.Logf("os.Open got %d; the file was duplicated onto %d", got, num)
	}

	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	wait(t, ch.Closed(), "the channel closing")

	b := make([]byte, 64)
	n, err := unix.Pread(num, b, 0)
	if err != nil || string(b[:max(n, 0)]) != content {
		t.Fatalf("the file now at fd %d: read %q, %v; want %q (the channel closed it)", num, b[:max(n, 0)], err, content)
	}
	if n := ch.Loop().Counters().DescriptorsContained.Load(); n != 1 {
		t.Errorf("DescriptorsContained = %d, want 1", n)
	}
	if err := ch.Err(); err == nil || !strings.Contains(err.Error(), "fd "+strconv.Itoa(num)) {
		t.Errorf("channel error %v, want one naming fd %d", err, num)
	}
}

// TestCloseAfterNumberFreed: the descriptor is closed behind the loop's back
// and the number stays free. The DEL answers EBADF; the channel is abandoned
// without a close(2) on the number, and its error says so.
func TestCloseAfterNumberFreed(t *testing.T) {
	checkFDs(t)
	rec := newRecorder()
	_, ch := socketpairChannel(t, rec, nil)
	wait(t, rec.active, "OnActive")
	settled(t, ch)
	num := ch.reg.fd.Fd()
	if err := unix.Close(num); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	wait(t, ch.Closed(), "the channel closing")
	wait(t, rec.inactive, "OnInactive")
	if n := ch.Loop().Counters().DescriptorsContained.Load(); n != 1 {
		t.Errorf("DescriptorsContained = %d, want 1", n)
	}
	err := ch.Err()
	if err == nil || !strings.Contains(err.Error(), "epoll_ctl DEL") || !strings.Contains(err.Error(), "fd "+strconv.Itoa(num)) {
		t.Errorf("channel error %v, want one naming epoll_ctl DEL and fd %d", err, num)
	}
}

// settled waits until ch's loop has performed the rest of the action list that
// called OnActive (armRead): a task runs only between steps.
func settled(t *testing.T, ch *Channel) {
	t.Helper()
	done := make(chan struct{})
	if err := ch.Loop().Execute(func() { close(done) }); err != nil {
		t.Fatal(err)
	}
	wait(t, done, "the loop to finish activating the channel")
}
