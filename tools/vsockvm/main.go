// Vsockvm runs the repository's AF_VSOCK tests for real, in a throwaway
// virtual machine whose kernel has the vsock loopback transport that the
// development machines lack (there a local, CID 1, bind fails with
// EADDRNOTAVAIL and those tests skip).
//
// Usage:
//
//	go run ./tools/vsockvm [-cache dir] [-run regexp] [-timeout d] [-smp n] [package ...]
//
// It is what `make test-vsock` runs, from the repository's root. In order, it:
//
//  1. finds qemu-system-x86_64 and a static busybox, installing Debian's
//     qemu-system-x86 and busybox-static with apt-get when missing (root only;
//     apt-get update once if the install fails);
//  2. takes the kernel image and the modules vsock, vmw_vsock_virtio_transport_common
//     and vsock_loopback from the cache (-cache, default .cache/vsockvm), or
//     fetches the package linux-image-amd64 depends on with apt-get download
//     and unpacks those files into the cache (about 70 MB fetched, 8 MB kept;
//     nothing goes into /boot; delete the cache to move to a newer kernel);
//  3. builds each package's tests (default ./sockets ./loop ./examples/echo) as
//     a static binary with CGO_ENABLED=0 go test -c;
//  4. writes an initramfs holding busybox, the modules, the binaries and an
//     /init script that mounts proc, sys and devtmpfs, loads the modules, runs
//     every binary with -test.v -test.run regexp (default Vsock), prints each
//     binary's exit status on a marker line and powers off;
//  5. boots it with qemu under TCG (KVM hangs this guest on these machines),
//     streams the guest's console to standard output, and kills the guest
//     after -timeout (default: a minute plus -test-timeout, 2m, per package;
//     each binary runs with -test.timeout set to -test-timeout).
//
// It exits 0 only if the guest booted and loaded the modules, every binary
// exited 0, no test failed, no test skipped (in the guest nothing lacks vsock,
// so a skip is a test that did not run), and at least one test passed. It
// exits 1 otherwise, saying why, and 2 on a usage error.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	os.Exit(mainErr(os.Args[1:]))
}

type config struct {
	cache       string
	run         string
	timeout     time.Duration
	testTimeout time.Duration
	smp         int
	memMiB      int
	pkgs        []string
}

func mainErr(args []string) int {
	fs := flag.NewFlagSet("vsockvm", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.cache, "cache", ".cache/vsockvm", "`dir`ectory for the unpacked kernel")
	fs.StringVar(&c.run, "run", "Vsock", "-test.run `regexp` selecting the tests to run in the guest")
	fs.DurationVar(&c.timeout, "timeout", 0, "kill the guest after this long; 0 means 1m plus -test-timeout per package")
	fs.DurationVar(&c.testTimeout, "test-timeout", 2*time.Minute, "-test.timeout of each test binary in the guest")
	fs.IntVar(&c.smp, "smp", 2, "the guest's processors")
	fs.IntVar(&c.memMiB, "m", 512, "the guest's memory in MiB")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.pkgs = fs.Args()
	if len(c.pkgs) == 0 {
		c.pkgs = []string{"./sockets", "./loop", "./examples/echo"}
	}
	if c.timeout < 0 || c.testTimeout <= 0 || c.smp < 1 || c.memMiB < 128 {
		fmt.Fprintln(os.Stderr, "vsockvm: -timeout must not be negative, -test-timeout must be positive, -smp at least 1, -m at least 128")
		return 2
	}
	if c.timeout == 0 {
		// Boot and module loading take seconds; each binary stops itself
		// (panicking with every goroutine's stack) after -test-timeout.
		c.timeout = time.Minute + time.Duration(len(c.pkgs))*c.testTimeout
	}
	if err := runAll(c); err != nil {
		fmt.Fprintf(os.Stderr, "vsockvm: FAIL: %v\n", err)
		return 1
	}
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vsockvm: "+format+"\n", args...)
}

func runAll(c config) error {
	start := time.Now()
	tools, err := findHostTools()
	if err != nil {
		return fmt.Errorf("host tools: %w", err)
	}
	k, err := cachedKernel(c.cache)
	if err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	how := "fetched into"
	if k.cached {
		how = "cached in"
	}
	logf("kernel %s (%s) %s %s; qemu %s; busybox %s (%.1fs)", k.release, k.pkg, how, k.dir, tools.qemu, tools.busybox, time.Since(start).Seconds())

	work, err := os.MkdirTemp("", "vsockvm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	t0 := time.Now()
	bins, err := buildTests(c.pkgs, work)
	if err != nil {
		return err
	}
	logf("built %s (%.1fs)", strings.Join(bins, ", "), time.Since(t0).Seconds())

	initrd := filepath.Join(work, "initrd.cpio")
	if err := writeInitramfs(initrd, tools.busybox, k, work, bins, c); err != nil {
		return err
	}

	t0 = time.Now()
	tr, err := boot(c, tools.qemu, k, initrd, os.Stdout)
	guest := time.Since(t0)
	if err != nil {
		return err
	}
	if err := tr.verdict(bins); err != nil {
		return err
	}
	top := 0
	for _, name := range tr.passed {
		if !strings.Contains(name, "/") {
			top++
		}
	}
	logf("PASS: %d tests passed in the guest (%d top-level tests and their subtests), none failed or skipped; guest %.1fs, total %.1fs",
		len(tr.passed), top, guest.Seconds(), time.Since(start).Seconds())
	return nil
}

// binaryName is the guest's file name of pkg's test binary:
// "./examples/echo" is examples-echo.test.
func binaryName(pkg string) string {
	p := strings.TrimPrefix(path.Clean(filepath.ToSlash(pkg)), "./")
	return strings.ReplaceAll(p, "/", "-") + ".test"
}

// ownModule returns the directory go test -c must run in for a package given
// as a directory, and the package relative to it: the nearest directory above
// it with a go.mod, so that a package of a nested module (bench/, whose
// dependencies the root module must not have) builds in its own module. A
// package of the current module builds here, as given.
func ownModule(pkg string) (dir, rel string, err error) {
	if !strings.HasPrefix(pkg, ".") {
		return "", pkg, nil // an import path: the current module resolves it
	}
	abs, err := filepath.Abs(pkg)
	if err != nil {
		return "", "", err
	}
	here, err := filepath.Abs(".")
	if err != nil {
		return "", "", err
	}
	for d := abs; d != here && strings.HasPrefix(d, here+string(filepath.Separator)); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			r, err := filepath.Rel(d, abs)
			if err != nil {
				return "", "", err
			}
			return d, "./" + filepath.ToSlash(r), nil
		}
	}
	return "", pkg, nil
}

// buildTests builds each package's tests as a static linux/amd64 binary in dir
// and returns the binaries' names.
func buildTests(pkgs []string, dir string) ([]string, error) {
	var bins []string
	for _, pkg := range pkgs {
		bin := binaryName(pkg)
		modDir, rel, err := ownModule(pkg)
		if err != nil {
			return nil, err
		}
		out, err := filepath.Abs(filepath.Join(dir, bin))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command("go", "test", "-c", "-o", out, rel)
		cmd.Dir = modDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		cmd.Stdout = os.Stderr
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("building the tests of %s: %w", pkg, err)
		}
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return nil, fmt.Errorf("%s has no tests to build: %w", pkg, err)
		}
		bins = append(bins, bin)
	}
	return bins, nil
}

// writeInitramfs writes the guest's root file system to file: busybox, the
// vsock modules, the test binaries (from dir) and /init.
func writeInitramfs(file, busybox string, k kernel, dir string, bins []string, c config) error {
	t := tree{}
	for _, d := range []string{"/proc", "/sys", "/dev", "/tmp"} {
		t.dir(d)
	}
	// The kernel opens /dev/console for /init's standard streams before
	// anything mounts devtmpfs.
	t.add(entry{Name: "/dev/console", Mode: modeCharDev | 0o600, Major: 5, Minor: 1})
	data, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	t.file("/bin/busybox", 0o755, data)
	t.add(entry{Name: "/bin/sh", Mode: modeSymlink | 0o777, Data: []byte("busybox")})
	for _, m := range vsockModules {
		data, err := os.ReadFile(filepath.Join(k.dir, m))
		if err != nil {
			return err
		}
		t.file("/modules/"+m, 0o644, data)
	}
	for _, b := range bins {
		data, err := os.ReadFile(filepath.Join(dir, b))
		if err != nil {
			return err
		}
		t.file("/tests/"+b, 0o755, data)
	}
	args := []string{"-test.v", "-test.count=1", "-test.run", c.run, "-test.timeout", c.testTimeout.String()}
	t.file("/init", 0o755, initScript(vsockModules, bins, args))

	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := writeNewc(w, t); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("initramfs: writing %s: %w", file, err)
	}
	return f.Close()
}

// qemuArgs are the arguments that boot kernel k with initrd under TCG, its
// console on the serial port and so on standard output. panic=-1 and
// -no-reboot make a guest whose /init dies exit instead of hang.
func qemuArgs(c config, k kernel, initrd string) []string {
	return []string{
		"-accel", "tcg",
		"-m", strconv.Itoa(c.memMiB),
		"-smp", strconv.Itoa(c.smp),
		"-nographic", "-no-reboot",
		"-nic", "none", // no network card: the guest needs none, and its boot ROM is slow
		"-kernel", k.vmlinuz(),
		"-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet",
	}
}

// boot runs the guest, copying its console to out line by line and reading it
// into a transcript, and stops it after c.timeout.
func boot(c config, qemu string, k kernel, initrd string, out io.Writer) (*transcript, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, qemuArgs(c, k, initrd)...)
	cmd.Stdin = nil // the serial console reads nothing
	var stderr bytes.Buffer
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	cmd.WaitDelay = 5 * time.Second
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logf("booting: %s %s", qemu, strings.Join(qemuArgs(c, k, initrd), " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting qemu: %w", err)
	}
	tr := newTranscript()
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		fmt.Fprintln(out, line)
		tr.line(line)
	}
	scanErr := sc.Err()
	waitErr := cmd.Wait()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		running := "before any test binary ran"
		if tr.current != "" {
			running = "while " + tr.current + " ran"
		}
		return tr, fmt.Errorf("the guest did not power off within %v (-timeout); killed it %s", c.timeout, running)
	case waitErr != nil:
		return tr, fmt.Errorf("qemu: %w: %s", waitErr, strings.TrimSpace(stderr.String()))
	case scanErr != nil:
		return tr, fmt.Errorf("reading the guest's console: %w", scanErr)
	}
	return tr, nil
}
