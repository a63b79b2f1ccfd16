package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

func version(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	if _, err := interleaved(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("version: takes no arguments")
	}
	bi, _ := debug.ReadBuildInfo() // nil without build information
	_, err := fmt.Fprintln(stdout, versionLine(bi))
	return err
}

// versionLine describes the build of fsmgen: the version of the module that
// holds the fsmgen package (the main module after go install or go build, a
// dependency under go tool), its replacement if any, the VCS revision and
// state the go command stamped into a build of the main module, and the Go
// version. Without build information it says so.
func versionLine(bi *debug.BuildInfo) string {
	if bi == nil {
		return "fsmgen (no build information) " + runtime.Version()
	}
	mod := &bi.Main
	if !within(bi.Path, mod.Path) {
		for _, d := range bi.Deps {
			if within(bi.Path, d.Path) && (mod == &bi.Main || len(d.Path) > len(mod.Path)) {
				mod = d
			}
		}
	}
	v := mod.Version
	if v == "" {
		v = "(devel)"
	}
	parts := []string{"fsmgen", v}
	if r := mod.Replace; r != nil {
		parts = append(parts, "=>", r.Path)
		if r.Version != "" {
			parts = append(parts, r.Version)
		}
	}
	if mod == &bi.Main {
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			vcs := settings["vcs"] + " " + rev
			if settings["vcs.modified"] == "true" {
				vcs += " (modified)"
			}
			if t := settings["vcs.time"]; t != "" {
				vcs += " " + t
			}
			parts = append(parts, strings.TrimSpace(vcs))
		}
	}
	return strings.Join(append(parts, bi.GoVersion), " ")
}

// within reports whether package path pkg is in the module at modPath.
func within(pkg, modPath string) bool {
	return modPath != "" && (pkg == modPath || strings.HasPrefix(pkg, modPath+"/"))
}
