package gen

import (
	"fmt"
	pathpkg "path"
	"regexp"

	"github.com/dave/jennifer/jen"
)

// newPackageFile starts a generated file of package name. With path, the file's own
// import path, references to that package are written unqualified.
func newPackageFile(name, path string) *jen.File {
	if path == "" {
		return jen.NewFile(name)
	}
	return jen.NewFilePathName(path, name)
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// ImportName returns the Go package name under which the package at import path
// is referred to: name when given, else the last element of path that is not a
// major version suffix (example.com/breaker/v2 -> breaker), which must then be a
// Go identifier. The classifier and property-test emitters use it when their
// options leave MachinesName empty.
func ImportName(path, name string) (string, error) {
	if name != "" {
		if !isGoIdent(name) {
			return "", fmt.Errorf("gen: %q is not a valid Go package name", name)
		}
		return name, nil
	}
	base := pathpkg.Base(path)
	if majorVersion.MatchString(base) && pathpkg.Dir(path) != "." {
		base = pathpkg.Base(pathpkg.Dir(path))
	}
	if !isGoIdent(base) {
		return "", fmt.Errorf("gen: the package name of %q cannot be told from its path; give the name", path)
	}
	return base, nil
}

// importMachines names the machines' package in f's import block: with an
// alias when its name is not the last element of its path, as goimports would.
func importMachines(f *jen.File, path, name string) {
	if guess, _ := ImportName(path, ""); guess == name {
		f.ImportName(path, name)
		return
	}
	f.ImportAlias(path, name)
}
