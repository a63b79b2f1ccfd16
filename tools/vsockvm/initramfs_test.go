package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readNewc parses a newc archive as the kernel does, checking the magic and
// the 4-byte alignment of every name and body, up to TRAILER!!!.
func readNewc(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("header at %d, field %d: %v", off, i, err)
		}
		return uint32(v)
	}
	for {
		if off%4 != 0 {
			t.Fatalf("header at offset %d is not 4-byte aligned", off)
		}
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("magic %q at offset %d, want 070701", b[off:off+6], off)
		}
		mode, size, major, minor, nameSize := field(1), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+int(nameSize)-1])
		if b[off+110+int(nameSize)-1] != 0 {
			t.Fatalf("name %q is not NUL-terminated", name)
		}
		data := off + 110 + int(nameSize)
		data += (4 - data%4) % 4
		if name == "TRAILER!!!" {
			if data != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-data)
			}
			return out
		}
		out = append(out, entry{Name: name, Mode: mode, Data: b[data : data+int(size)], Major: major, Minor: minor})
		off = data + int(size)
		off += (4 - off%4) % 4
	}
}

func TestWriteNewc(t *testing.T) {
	tr := tree{}
	tr.dir("/proc")
	tr.add(entry{Name: "/dev/console", Mode: modeCharDev | 0o600, Major: 5, Minor: 1})
	tr.file("/bin/busybox", 0o755, []byte("not really busybox")) // 18 bytes: padded
	tr.add(entry{Name: "/bin/sh", Mode: modeSymlink | 0o777, Data: []byte("busybox")})
	tr.file("/init", 0o755, []byte("#!/bin/busybox sh\n"))
	tr.file("/tests/a/b.test", 0o755, bytes.Repeat([]byte{0xAB}, 1001))
	var buf bytes.Buffer
	if err := writeNewc(&buf, tr); err != nil {
		t.Fatal(err)
	}
	got := readNewc(t, buf.Bytes())
	var names []string
	for _, e := range got {
		names = append(names, e.Name)
		want := tr["/"+e.Name]
		if e.Mode != want.Mode || !bytes.Equal(e.Data, want.Data) || e.Major != want.Major || e.Minor != want.Minor {
			t.Errorf("%s: mode %o, %d bytes, device %d:%d; want mode %o, %d bytes, device %d:%d",
				e.Name, e.Mode, len(e.Data), e.Major, e.Minor, want.Mode, len(want.Data), want.Major, want.Minor)
		}
	}
	// Parents come before their children, and the parents were created.
	want := "bin bin/busybox bin/sh dev dev/console init proc tests tests/a tests/a/b.test"
	if strings.Join(names, " ") != want {
		t.Errorf("entries %q, want %q", strings.Join(names, " "), want)
	}
	if tr["/tests/a"].Mode != modeDir|0o755 {
		t.Errorf("the parent /tests/a has mode %o, want a directory", tr["/tests/a"].Mode)
	}
}

func TestWriteNewcRejectsRelativeNames(t *testing.T) {
	if err := writeNewc(&bytes.Buffer{}, tree{"init": {Name: "init", Mode: modeRegular}}); err == nil {
		t.Fatal("a relative name was written")
	}
}

// TestWriteNewcBusybox has busybox's cpio, an independent reader, list and
// extract an archive, where busybox is installed.
func TestWriteNewcBusybox(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox is not installed: only the archive's own reader checks it")
	}
	tr := tree{}
	tr.file("/init", 0o755, []byte("#!/bin/busybox sh\necho hi\n"))
	tr.file("/tests/x.test", 0o644, []byte("abc"))
	tr.add(entry{Name: "/bin/sh", Mode: modeSymlink | 0o777, Data: []byte("busybox")})
	var buf bytes.Buffer
	if err := writeNewc(&buf, tr); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(bb, "cpio", "-i", "-d")
	cmd.Dir = dir
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio -i: %v\n%s", err, out)
	}
	for name, want := range map[string]string{"init": "#!/bin/busybox sh\necho hi\n", "tests/x.test": "abc"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "init")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("init: %v, %v; want mode 0755", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin", "sh")); err != nil || target != "busybox" {
		t.Errorf("bin/sh links to %q, %v; want busybox", target, err)
	}
}

func TestInitScript(t *testing.T) {
	script := string(initScript(vsockModules, []string{"sockets.test", "loop.test"}, []string{"-test.run", "Vsock|it's"}))
	for _, want := range []string{
		"#!/bin/busybox sh\n",
		"insmod /modules/vsock.ko || fail",
		"echo \"@@vsockvm ready $(uname -r)\"",
		"/tests/sockets.test '-test.run' 'Vsock|it'\"'\"'s'\necho \"@@vsockvm exit sockets.test $?\"",
		"/tests/loop.test '-test.run' 'Vsock|it'\"'\"'s'\necho \"@@vsockvm exit loop.test $?\"",
		"echo '@@vsockvm done'\npoweroff -f\n",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("/init lacks %q:\n%s", want, script)
		}
	}
	// The modules load in dependency order, before any test runs.
	last := -1
	for _, m := range vsockModules {
		i := strings.Index(script, "insmod /modules/"+m)
		if i < last {
			t.Errorf("%s is loaded out of order", m)
		}
		last = i
	}
	if i := strings.Index(script, "/tests/"); i < last {
		t.Error("a test runs before the modules are loaded")
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		// Parse only (-n): the script mounts and powers off.
		cmd := exec.Command(sh, "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sh -n: %v\n%s\n%s", err, out, script)
		}
	}
}

func TestShellQuote(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, s := range []string{"Vsock", "a b", "it's", `"$HOME" $(x) \n`, ""} {
		out, err := exec.Command(sh, "-c", "printf %s "+shellQuote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("shellQuote(%q) reads back as %q, %v", s, out, err)
		}
	}
}

func TestBinaryName(t *testing.T) {
	for pkg, want := range map[string]string{
		"./sockets":       "sockets.test",
		"./examples/echo": "examples-echo.test",
		"loop/":           "loop.test",
	} {
		if got := binaryName(pkg); got != want {
			t.Errorf("binaryName(%q) = %q, want %q", pkg, got, want)
		}
	}
}

func TestParseDepends(t *testing.T) {
	for out, want := range map[string]string{
		"linux-image-amd64\n  Depends: linux-image-6.1.0-48-amd64\n":                                               "linux-image-6.1.0-48-amd64",
		"linux-image-amd64\n  Depends: <linux-image-6.12.9-amd64-unsigned>\n  Depends: linux-image-6.12.9-amd64\n": "linux-image-6.12.9-amd64",
		"linux-image-amd64\n":                "",
		"W: Unable to locate package x\n":    "",
		"x\n  Recommends: linux-image-6.1\n": "",
	} {
		if got := parseDepends([]byte(out)); got != want {
			t.Errorf("parseDepends(%q) = %q, want %q", out, got, want)
		}
	}
}

func TestQemuArgsUseTCG(t *testing.T) {
	args := strings.Join(qemuArgs(config{smp: 2, memMiB: 512}, kernel{dir: "k"}, "initrd"), " ")
	for _, want := range []string{"-accel tcg", "-no-reboot", "-kernel " + filepath.Join("k", "vmlinuz"), "-initrd initrd", "panic=-1", "-m 512", "-smp 2"} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu %s lacks %q", args, want)
		}
	}
	// KVM hangs this guest at boot on these machines, and -cpu host aborts.
	for _, bad := range []string{"kvm", "-cpu host"} {
		if strings.Contains(args, bad) {
			t.Errorf("qemu %s has %q", args, bad)
		}
	}
}

// TestOwnModule: a package of the nested bench module builds in bench/, one
// of the root module where it is given.
func TestOwnModule(t *testing.T) {
	t.Chdir("../..")
	dir, rel, err := ownModule("./bench/grpcbench")
	if err != nil || filepath.Base(dir) != "bench" || rel != "./grpcbench" {
		t.Errorf("ownModule(./bench/grpcbench) = %q, %q, %v; want bench/ and ./grpcbench", dir, rel, err)
	}
	dir, rel, err = ownModule("./loop")
	if err != nil || dir != "" || rel != "./loop" {
		t.Errorf("ownModule(./loop) = %q, %q, %v; want the current module", dir, rel, err)
	}
}
