package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// This file provides what the guest needs from the host's Debian packages:
// qemu and a static busybox (installed with apt-get when missing), and the
// kernel image and vsock modules of Debian's current kernel package (fetched
// with apt-get download and unpacked into the cache, never into /boot).

// vsockModules are the modules that give the guest AF_VSOCK with the loopback
// transport (CID 1), in the order insmod must load them.
var vsockModules = []string{"vsock.ko", "vmw_vsock_virtio_transport_common.ko", "vsock_loopback.ko"}

// kernelMeta is Debian's package that depends on the current kernel image.
const kernelMeta = "linux-image-amd64"

// hostTools are the paths of the host programs the run uses.
type hostTools struct {
	qemu, busybox string
}

// findHostTools finds qemu-system-x86_64 and a static busybox, installing
// Debian's qemu-system-x86 and busybox-static when either is missing.
func findHostTools() (hostTools, error) {
	h, err := lookHostTools()
	if err == nil {
		return h, nil
	}
	logf("%v; installing qemu-system-x86 and busybox-static with apt-get", err)
	if err := aptInstall("qemu-system-x86", "busybox-static"); err != nil {
		return hostTools{}, err
	}
	return lookHostTools()
}

func lookHostTools() (hostTools, error) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return hostTools{}, errors.New("qemu-system-x86_64 is not installed")
	}
	// busybox-static installs /bin/busybox; a dynamic busybox from the busybox
	// package would not run in the guest, which has no libc.
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if static, err := isStatic(p); err == nil && static {
			return hostTools{qemu: qemu, busybox: p}, nil
		}
	}
	return hostTools{}, errors.New("no statically linked busybox in /bin or /usr/bin")
}

// isStatic reports whether the ELF executable at p needs no dynamic loader.
func isStatic(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// aptInstall installs Debian packages, refreshing the package lists once if
// the first attempt fails (a fresh machine has none, or stale ones).
func aptInstall(pkgs ...string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("apt-get install %s needs root: run as root, or install them yourself", strings.Join(pkgs, " "))
	}
	args := append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)
	if _, err := run("", "apt-get", args...); err == nil {
		return nil
	}
	if err := aptUpdate(); err != nil {
		return err
	}
	_, err := run("", "apt-get", args...)
	return err
}

func aptUpdate() error {
	if os.Geteuid() != 0 {
		return errors.New("apt-get update needs root")
	}
	_, err := run("", "apt-get", "update")
	return err
}

// kernel is an unpacked kernel in the cache: the image and the vsock modules.
type kernel struct {
	dir     string // holds vmlinuz, the modules and packageStamp
	pkg     string // the Debian package it came from
	release string // its uname -r
	cached  bool   // found in the cache rather than fetched now
}

func (k kernel) vmlinuz() string { return filepath.Join(k.dir, "vmlinuz") }

// packageStamp names, in a kernel's cache folder, the file recording the
// package and release; it is written last, so a folder without it is
// incomplete.
const packageStamp = "PACKAGE"

// cachedKernel returns the kernel unpacked under cache, fetching and
// unpacking the package linux-image-amd64 currently depends on when the cache
// holds none. Delete the cache to move to a newer kernel.
func cachedKernel(cache string) (kernel, error) {
	dir := filepath.Join(cache, "kernel")
	if stamp, err := os.ReadFile(filepath.Join(dir, packageStamp)); err == nil {
		pkg, release, _ := strings.Cut(strings.TrimSpace(string(stamp)), " ")
		return kernel{dir: dir, pkg: pkg, release: release, cached: true}, nil
	}
	pkg, err := kernelPackage()
	if err != nil {
		return kernel{}, err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return kernel{}, err
	}
	work, err := os.MkdirTemp(cache, "fetch-")
	if err != nil {
		return kernel{}, err
	}
	defer os.RemoveAll(work)
	deb, err := download(pkg, work)
	if err != nil {
		return kernel{}, err
	}
	root := filepath.Join(work, "root")
	if _, err := run("", "dpkg-deb", "-x", deb, root); err != nil {
		return kernel{}, err
	}
	out := filepath.Join(work, "kernel")
	release, err := extractKernel(root, out)
	if err != nil {
		return kernel{}, fmt.Errorf("%s: %w", pkg, err)
	}
	if err := os.WriteFile(filepath.Join(out, packageStamp), []byte(pkg+" "+release+"\n"), 0o644); err != nil {
		return kernel{}, err
	}
	if err := os.RemoveAll(dir); err != nil { // an incomplete earlier attempt
		return kernel{}, err
	}
	if err := os.Rename(out, dir); err != nil {
		return kernel{}, err
	}
	return kernel{dir: dir, pkg: pkg, release: release}, nil
}

// kernelPackage asks apt which kernel image package linux-image-amd64 depends
// on now, refreshing the package lists if apt knows none.
func kernelPackage() (string, error) {
	out, err := run("", "apt-cache", "depends", kernelMeta)
	if pkg := parseDepends(out); err == nil && pkg != "" {
		return pkg, nil
	}
	if err := aptUpdate(); err != nil {
		return "", fmt.Errorf("apt-cache depends %s found no kernel image, and the lists could not be refreshed: %w", kernelMeta, err)
	}
	out, err = run("", "apt-cache", "depends", kernelMeta)
	if err != nil {
		return "", err
	}
	if pkg := parseDepends(out); pkg != "" {
		return pkg, nil
	}
	return "", fmt.Errorf("apt-cache depends %s names no linux-image package:\n%s", kernelMeta, out)
}

// parseDepends returns the first kernel image package in the output of
// apt-cache depends linux-image-amd64:
//
//	linux-image-amd64
//	  Depends: linux-image-6.1.0-48-amd64
func parseDepends(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		dep, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Depends: ")
		if ok && strings.HasPrefix(dep, "linux-image-") && !strings.ContainsAny(dep, "<> ") {
			return dep
		}
	}
	return ""
}

// download fetches pkg's .deb into dir with apt-get download, refreshing the
// lists once if the mirror no longer has the version apt knows.
func download(pkg, dir string) (string, error) {
	// apt drops privileges to _apt for downloads, which cannot write to a
	// root-owned cache; the file is ours to write.
	args := []string{"download", "-o", "APT::Sandbox::User=root", pkg}
	if _, err := run(dir, "apt-get", args...); err != nil {
		if uerr := aptUpdate(); uerr != nil {
			return "", err
		}
		if _, err := run(dir, "apt-get", args...); err != nil {
			return "", err
		}
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s left %d .deb files in %s, want 1", pkg, len(debs), dir)
	}
	return debs[0], nil
}

// extractKernel copies, from an unpacked kernel package at root, the kernel
// image and the vsock modules (decompressing .ko.xz) into out, and returns the
// kernel's release.
func extractKernel(root, out string) (string, error) {
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return "", fmt.Errorf("%d kernel images under boot/, want 1", len(images))
	}
	release := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	if err := copyFile(images[0], filepath.Join(out, "vmlinuz")); err != nil {
		return "", err
	}
	var modDir string
	for _, d := range []string{"lib", "usr/lib"} { // bookworm; trixie merged /usr
		p := filepath.Join(root, d, "modules", release, "kernel", "net", "vmw_vsock")
		if _, err := os.Stat(p); err == nil {
			modDir = p
		}
	}
	if modDir == "" {
		return "", fmt.Errorf("no kernel/net/vmw_vsock under lib/modules/%s", release)
	}
	for _, m := range vsockModules {
		src := filepath.Join(modDir, m)
		dst := filepath.Join(out, m)
		if _, err := os.Stat(src); err == nil {
			if err := copyFile(src, dst); err != nil {
				return "", err
			}
			continue
		}
		if _, err := os.Stat(src + ".xz"); err != nil {
			return "", fmt.Errorf("module %s is missing from %s (neither %s nor %s.xz)", m, modDir, m, m)
		}
		data, err := decompressXZ(src + ".xz")
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return "", err
		}
	}
	return release, nil
}

// decompressXZ decompresses an .xz file with xz, or busybox's xzcat where xz
// is not installed.
func decompressXZ(p string) ([]byte, error) {
	if _, err := exec.LookPath("xz"); err == nil {
		return run("", "xz", "-dc", p)
	}
	return run("", "busybox", "xzcat", p)
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// run runs name with args in dir (the current directory if empty) and returns
// its standard output. An error names the command and carries the end of its
// standard error.
func run(dir, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		return out, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, msg)
	}
	return out, nil
}
