package gen

import (
	"strings"
	"testing"
)

// TestYAMLSyntaxPositions: a syntax error is reported at the line and column
// where it is, not where the block holding it began, with a hint for the
// mistakes tables invite.
func TestYAMLSyntaxPositions(t *testing.T) {
	for _, c := range []struct {
		name, src, want string
	}{
		{"indentation", "machine:\n  name: m\n  states:\n    a: {}\n   b: {}\n", "t.yaml:5:4: invalid YAML:"},
		{"unquoted !", "machine:\n  rows:\n    - {from: a, on: b, when: !x, to: c}\n", `t.yaml:3:30: invalid YAML: unexpected scalar value type; a value starting with "!" is a YAML tag: quote the expression`},
		{"unclosed flow", "machine:\n  name: [unclosed, it's fine # a comment [\n  states: {}\n", `t.yaml:2:9: invalid YAML: "[" opened here is not closed (noticed at line 3, column 3)`},
		{"tab", "machine:\n\tname: m\n", "t.yaml:2:"},
	} {
		_, err := Load(Source{Path: "t.yaml", Data: []byte(c.src)})
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s:\n got: %v\nwant: %s...", c.name, err, c.want)
		}
	}
}
