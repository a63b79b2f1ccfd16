package gen

import (
	"errors"
	"fmt"
	"strings"

	goyaml "github.com/goccy/go-yaml"
	goyamlparser "github.com/goccy/go-yaml/parser"
)

// yamlSyntax checks src's YAML syntax before the spec is read, and returns the
// first error at the line and column where it is, with a hint for the
// mistakes tables invite. The reader (go.yaml.in/yaml/v3) says where the
// block holding a mistake began, often lines before it and with no column;
// github.com/goccy/go-yaml's parser says where it went wrong, so it runs
// first, for the diagnostics only.
func yamlSyntax(path string, src []byte) (Pos, string, bool) {
	// Duplicate keys are the reader's to report, with both positions.
	_, err := goyamlparser.ParseBytes(src, 0, goyamlparser.AllowDuplicateMapKey())
	if err == nil {
		return Pos{}, "", false
	}
	pos := Pos{File: path, Line: 1, Col: 1}
	msg := err.Error()
	var se *goyaml.SyntaxError
	if errors.As(err, &se) {
		msg = se.Message
		if se.Token != nil && se.Token.Position != nil {
			pos.Line, pos.Col = se.Token.Position.Line, se.Token.Position.Column
		}
		if strings.Contains(msg, "must be specified") {
			// An unclosed flow collection is noticed lines later: point at
			// the bracket that was not closed.
			if open, ok := unclosed(src, pos); ok {
				msg = fmt.Sprintf("%q opened here is not closed (noticed at line %d, column %d)", open.ch, pos.Line, pos.Col)
				pos.Line, pos.Col = open.line, open.col
				return pos, "invalid YAML: " + msg, true
			}
		}
		if se.Token != nil {
			line := lineAt(src, pos.Line)
			if hint := yamlHint(se.Token.Value, line); hint != "" {
				msg += "; " + hint
			}
			// A tag's error is noticed at the scalar after it: point at "!".
			if i := strings.LastIndexByte(line[:min(len(line), max(pos.Col-1, 0))], '!'); i >= 0 && strings.HasPrefix(msg, "unexpected scalar") {
				pos.Col = i + 1
			}
		}
	}
	return pos, "invalid YAML: " + msg, true
}

// yamlHint explains a syntax error by the token it stopped at and its line.
func yamlHint(tok, line string) string {
	switch {
	case strings.HasPrefix(tok, "!") || strings.Contains(line, ": !"):
		return `a value starting with "!" is a YAML tag: quote the expression, e.g. when: "!delivered"`
	case strings.HasPrefix(tok, "*") || strings.HasPrefix(tok, "&"):
		return `"*" and "&" start YAML aliases and anchors: quote the value`
	case strings.Contains(line, "\t"):
		return "YAML indents with spaces, not tabs"
	case strings.Contains(line, ": ") && strings.Count(line, ":") > 1 && !strings.ContainsAny(line, `{["'`):
		return `a value holding ": " must be quoted`
	}
	return "check the indentation of this line against the lines before it"
}

type opener struct {
	ch        string
	line, col int
}

// unclosed returns the innermost "[" or "{" still open at pos, skipping
// quoted strings and comments.
func unclosed(src []byte, pos Pos) (opener, bool) {
	var stack []opener
	line, col := 1, 0
	var quote byte
	comment := false
	prev := byte('\n') // the last byte that was not a space
	last := byte('\n') // the last byte
	for _, c := range src {
		col++
		if line > pos.Line || (line == pos.Line && col >= pos.Col) {
			break
		}
		switch {
		case c == '\n':
			line, col, comment = line+1, 0, false
			if quote == '\'' {
				quote = 0
			}
		case comment:
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case (c == '"' || c == '\'') && strings.IndexByte(":-[{,\n", prev) >= 0:
			quote = c // a quoted scalar starts only where a value does
		case c == '#' && (last == ' ' || last == '\t' || last == '\n'):
			comment = true
		case c == '[' || c == '{':
			stack = append(stack, opener{string(c), line, col})
		case (c == ']' || c == '}') && len(stack) > 0:
			stack = stack[:len(stack)-1]
		}
		if c != ' ' {
			prev = c
		}
		last = c
	}
	if len(stack) == 0 {
		return opener{}, false
	}
	return stack[len(stack)-1], true
}

// lineAt returns line n (from 1) of src.
func lineAt(src []byte, n int) string {
	lines := strings.Split(string(src), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return lines[n-1]
}
