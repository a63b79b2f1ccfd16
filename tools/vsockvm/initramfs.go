package main

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// This file builds the guest's root file system: an initramfs, which is a cpio
// archive in the "newc" format the kernel unpacks into its rootfs before it
// runs /init. It is written here rather than by cpio(1), which these hosts
// lack, and left uncompressed: gzip would save a copy of the file in the
// guest's memory but cost seconds of decompression under TCG.

// File types and permissions of a cpio entry's mode, as in stat(2).
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

// An entry is one file of the archive. For a symlink, Data is the target; for a
// device, Major and Minor name it.
type entry struct {
	Name         string // absolute path in the guest, e.g. "/bin/busybox"
	Mode         uint32 // file type and permissions
	Data         []byte
	Major, Minor uint32
}

// tree is the guest's file system, by absolute path. Parents are created on
// the way: adding "/tests/loop.test" adds the directory "/tests".
type tree map[string]entry

func (t tree) add(e entry) {
	for dir := path.Dir(e.Name); dir != "/"; dir = path.Dir(dir) {
		if _, ok := t[dir]; !ok {
			t[dir] = entry{Name: dir, Mode: modeDir | 0o755}
		}
	}
	t[e.Name] = e
}

func (t tree) file(name string, perm uint32, data []byte) {
	t.add(entry{Name: name, Mode: modeRegular | perm, Data: data})
}

func (t tree) dir(name string) { t.add(entry{Name: name, Mode: modeDir | 0o755}) }

// writeNewc writes t as a newc cpio archive, parents before children, ending
// with the TRAILER!!! entry. Each entry is a 110-byte header of "070701" and
// thirteen 8-digit hexadecimal fields, then the NUL-terminated name padded to
// a multiple of 4 bytes, then the data padded likewise:
//
//	070701 00000002 000081ED 00000000 00000000 00000001 00000000 0000002A ...
//	init\0 <pad> #!/bin/busybox sh... <pad>
func writeNewc(w io.Writer, t tree) error {
	names := make([]string, 0, len(t))
	for name := range t {
		names = append(names, name)
	}
	sort.Strings(names) // "/a" sorts before "/a/b": parents first
	var off int64
	put := func(ino uint32, e entry, name string) error {
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.Mode, 0, 0, 1, 0, len(e.Data), 0, 0, e.Major, e.Minor, len(name)+1, 0)
		for _, p := range [][]byte{[]byte(hdr), []byte(name), {0}, pad(off + int64(len(hdr)+len(name)+1)), e.Data, pad(int64(len(e.Data)))} {
			n, err := w.Write(p)
			off += int64(n)
			if err != nil {
				return fmt.Errorf("initramfs: writing %s: %w", name, err)
			}
		}
		return nil
	}
	for i, name := range names {
		if !strings.HasPrefix(name, "/") {
			return fmt.Errorf("initramfs: %q is not an absolute path", name)
		}
		// The archive's names are relative to the root.
		if err := put(uint32(i+1), t[name], name[1:]); err != nil {
			return err
		}
	}
	return put(0, entry{}, "TRAILER!!!")
}

// pad returns the zero bytes that take n to a multiple of 4.
func pad(n int64) []byte { return make([]byte, (4-n%4)%4) }

// markerPrefix begins every line /init prints for the host to read; nothing a
// test prints begins with it.
const markerPrefix = "@@vsockvm "

// initScript is the guest's /init: a busybox shell script that mounts the
// kernel's file systems, loads the vsock modules in dependency order, runs
// each test binary with args, prints its exit status on a marker line, and
// powers the machine off. Any setup failure is a marker line too, so the host
// can tell "could not set up" from "tests failed".
func initScript(modules, binaries, args []string) []byte {
	var b strings.Builder
	b.WriteString(`#!/bin/busybox sh
/bin/busybox --install -s /bin
echo # end the line of whatever the firmware printed last
export PATH=/bin HOME=/tmp TMPDIR=/tmp
fail() { echo "` + markerPrefix + `error $*"; poweroff -f; }
mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sys /sys || fail "mount /sys"
mount -t devtmpfs dev /dev || fail "mount /dev"
ip link set lo up || fail "ip link set lo up"
`)
	for _, m := range modules {
		fmt.Fprintf(&b, "insmod /modules/%s || fail \"insmod %s\"\n", m, m)
	}
	fmt.Fprintf(&b, "echo \"%sready $(uname -r)\"\ncd /tmp\n", markerPrefix)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	for _, bin := range binaries {
		fmt.Fprintf(&b, "echo %s\n/tests/%s %s\necho \"%sexit %s $?\"\n",
			shellQuote(markerPrefix+"run "+bin), bin, strings.Join(quoted, " "), markerPrefix, bin)
	}
	fmt.Fprintf(&b, "echo %s\npoweroff -f\n", shellQuote(markerPrefix+"done"))
	return []byte(b.String())
}

// shellQuote quotes s for sh: 'it'"'"'s'.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
