package gen

import (
	"regexp"
	"strconv"
	"strings"
)

// Source is one spec file: the path used in diagnostics and its bytes.
type Source struct {
	Path string
	Data []byte
}

// Load parses, resolves and validates spec files into one Package. Outcome
// enumerations declared in any of the files are visible to every machine. On
// failure the error is a Diagnostics holding every problem found, each naming
// file:line:col; Load never panics on any input.
func Load(srcs ...Source) (*Package, error) {
	d := &diags{}
	var files []*rawFile
	for _, s := range srcs {
		if pos, msg, bad := yamlSyntax(s.Path, s.Data); bad {
			d.add(pos, "%s", msg)
			continue
		}
		if f := parseFile(s.Path, s.Data, d); f != nil {
			files = append(files, f)
		}
	}
	// Resolution runs even after shape errors, on what did parse, so one run
	// reports unknown names and type errors too; analysis needs a clean table.
	pkg := resolvePackage(files, d)
	if err := d.err(); err != nil {
		return nil, err
	}
	for _, m := range pkg.Machines {
		analyze(pkg, m, d)
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return pkg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

func yamlErrLine(err error) int {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil && m[1] != "" {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func yamlErrMsg(err error) string {
	msg := yamlLine.ReplaceAllString(err.Error(), "")
	return "invalid YAML: " + strings.TrimSpace(msg)
}
