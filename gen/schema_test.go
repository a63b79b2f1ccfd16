package gen_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"
	"golang.org/x/tools/txtar"

	"github.com/fsmkernel/fsmkernel/gen"
)

// The JSON Schema of the spec format, docs/spec.schema.json, is for editors
// (yaml-language-server). These tests keep it in step with the parser: every
// spec file of the repository that is meant to be valid validates, and specs
// the parser rejects for their shape are rejected by the schema too.

const schemaPath = "../docs/spec.schema.json"

// compileSchema compiles the schema, which the compiler first checks against
// the draft 2020-12 meta-schema.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	if m, ok := doc.(map[string]any); !ok || m["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Fatalf("%s: want \"$schema\": \"https://json-schema.org/draft/2020-12/schema\"", schemaPath)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaPath, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	return sch
}

// specJSON decodes a spec's YAML into the JSON data model the schema
// validates: mappings become map[string]any (keys turned into strings, as
// the parser reads every key as text), sequences []any, scalars what YAML
// resolves them to (string, int, float64, bool, nil).
func specJSON(src []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		return nil, err
	}
	return jsonValue(v), nil
}

func jsonValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = jsonValue(x)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[fmt.Sprint(k)] = jsonValue(x)
		}
		return m
	case []any:
		for i, x := range v {
			v[i] = jsonValue(x)
		}
		return v
	}
	return v
}

// validate decodes and validates one spec; the error names what failed.
func validate(sch *jsonschema.Schema, src []byte) error {
	v, err := specJSON(src)
	if err != nil {
		return fmt.Errorf("YAML: %v", err)
	}
	return sch.Validate(v)
}

// specFile is one spec the repository holds: a YAML file, or the spec/ file
// of a scenario archive.
type specFile struct {
	name  string // path from the repository root; archive!member for a scenario
	data  []byte
	valid bool // meant to be valid: false for scenarios that expect errors
}

// repoSpecs walks the repository (skipping hidden directories) for every
// *.yaml and *.yml file and every *.txtar archive with spec/ members.
func repoSpecs(t *testing.T) []specFile {
	t.Helper()
	var out []specFile
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := filepath.ToSlash(strings.TrimPrefix(path, ".."+string(filepath.Separator)))
		if d.IsDir() {
			if path != ".." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out = append(out, specFile{name: name, data: data, valid: true})
		case ".txtar":
			ar, err := txtar.ParseFile(path)
			if err != nil {
				return err
			}
			valid := true
			for _, f := range ar.Files {
				if f.Name == "errors" && len(bytes.TrimSpace(f.Data)) > 0 {
					valid = false
				}
			}
			for _, f := range ar.Files {
				if strings.HasPrefix(f.Name, "spec/") {
					out = append(out, specFile{name: name + "!" + f.Name, data: f.Data, valid: valid})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// TestSchemaValidatesRepositorySpecs validates every spec of the repository
// that is meant to be valid against docs/spec.schema.json.
func TestSchemaValidatesRepositorySpecs(t *testing.T) {
	sch := compileSchema(t)
	specs := repoSpecs(t)
	validated := 0
	dirs := map[string]int{}
	for _, s := range specs {
		if !s.valid {
			continue
		}
		validated++
		dirs[filepath.ToSlash(filepath.Dir(strings.SplitN(s.name, "!", 2)[0]))]++
		if err := validate(sch, s.data); err != nil {
			t.Errorf("%s does not validate against %s:\n%v", s.name, schemaPath, err)
		}
	}
	t.Logf("validated %d spec files against %s", validated, schemaPath)
	// Not vacuous: the kernel's tables, its model, the scenarios and the
	// command's test table must all have been found.
	if validated < 15 {
		t.Errorf("validated only %d spec files; the walk from the repository root should find at least 15", validated)
	}
	for _, dir := range []string{"spec", "spec/model", "gen/testdata", "gen/testdata/scenarios", "cmd/fsmgen/testdata", "verify/testdata"} {
		if dirs[dir] == 0 {
			t.Errorf("no valid spec file found in %s", dir)
		}
	}
}

// TestSchemaRejectsShapeErrors checks that specs the parser rejects for their
// shape are rejected by the schema too: scenarios, and mutations of a valid
// spec, each checked against gen.Load first.
func TestSchemaRejectsShapeErrors(t *testing.T) {
	sch := compileSchema(t)

	// Scenarios whose expected errors include shape errors (unknown key,
	// wrong kind, missing key or description, a duplicate key, bad YAML).
	scenarios := map[string]bool{
		"shape-errors":         false,
		"missing-descriptions": false,
		"duplicate-names":      false,
		"bad-yaml":             false,
		"empty":                false,
		"classifier-errors":    false,
	}
	for _, s := range repoSpecs(t) {
		base := strings.TrimSuffix(filepath.Base(strings.SplitN(s.name, "!", 2)[0]), ".txtar")
		if _, ok := scenarios[base]; !ok || !strings.Contains(s.name, "!") {
			continue
		}
		scenarios[base] = true
		if s.valid {
			t.Errorf("%s: the scenario expects no errors; it is listed here as invalid", s.name)
		}
		if err := validate(sch, s.data); err == nil {
			t.Errorf("%s: the parser rejects it, the schema accepts it", s.name)
		}
	}
	for name, found := range scenarios {
		if !found {
			t.Errorf("scenario %s not found", name)
		}
	}

	const base = `outcomes:
  res:
    description: A result.
    values: {ok: Fine., bad: Not fine.}
classifiers:
  call:
    description: Classifies a call.
    outcome: res
    success: ok
    default: bad
    errors: {EAGAIN: bad, EINTR: {outcome: bad, why: Interrupted.}}
machine:
  name: m
  description: A machine.
  states:
    idle: {description: Idle., initial: true}
    busy: {description: Busy.}
    done: {description: Done., terminal: true}
  events:
    start: {description: Start.}
    result: {description: A result., outcome: res}
    stop: {description: Stop., abnormal: true}
  variables:
    n: {type: int, min: 0, max: 3, initial: 0, description: A count.}
    fast: {type: bool, initial: false, option: true, description: An option.}
  actions:
    work: {description: Work., max: 1}
    finish: {description: Finish., after: work}
  transitions:
    - {from: idle, on: start, to: busy, do: [work], set: {n: 1}}
    - {from: busy, on: start, reject: true, why: Busy.}
    - {from: busy, on: result, outcome: ok, when: "n < 3", to: done, do: [finish]}
    - {from: busy, on: result, outcome: ok, when: "n == 3", to: done}
    - {from: busy, on: result, outcome: bad, to: done}
    - {from: idle, on: result, outcome: "*", ignore: true}
    - {from: "*", except: [done], on: stop, to: done}
    - {from: done, on: "*", ignore: true}
  invariants:
    bounded: {description: At most three., expr: "n <= 3"}
`
	load := func(src string) error {
		_, err := gen.Load(gen.Source{Path: "m.yaml", Data: []byte(src)})
		return err
	}
	if err := load(base); err != nil {
		t.Fatalf("the base spec does not load:\n%v", err)
	}
	if err := validate(sch, []byte(base)); err != nil {
		t.Fatalf("the base spec does not validate:\n%v", err)
	}
	// Each mutation of the base spec is an error for gen.Load; want is a part
	// of the schema's error that shows it rejects the spec for that reason.
	mutations := []struct{ what, old, new, want string }{
		{"unknown top-level key", "machine:\n", "machines: {}\nmachine:\n", "'machines' not allowed"},
		{"nothing declared", base, "outcomes: {}\n", "'anyOf' failed"},
		{"unknown machine key", "  description: A machine.\n", "  descripton: A machine.\n", "'descripton' not allowed"},
		{"unknown state key", "initial: true}", "initial: true, final: false}", "at '/machine/states/idle': additional properties 'final'"},
		{"unknown row key", "why: Busy.", "because: Busy.", "at '/machine/transitions/1': additional properties 'because'"},
		{"missing from", "{from: busy, on: start, reject", "{on: start, reject", "at '/machine/transitions/1': missing property 'from'"},
		{"missing transitions", "  transitions:\n", "  rows:\n", "missing property 'transitions'"},
		{"missing values", "    values: {ok: Fine., bad: Not fine.}\n", "", "at '/outcomes/res': missing property 'values'"},
		{"missing description", "    work: {description: Work., max: 1}", "    work: {max: 1}", "at '/machine/actions/work': missing property 'description'"},
		{"empty description", "Done., terminal: true}\n  events", "\"\", terminal: true}\n  events", "at '/machine/states/done/description': minLength"},
		{"boolean not true or false", "initial: true}", "initial: yes}", "at '/machine/states/idle/initial': got string, want boolean"},
		{"state not a mapping", "busy: {description: Busy.}", "busy: [Busy]", "at '/machine/states/busy': got array, want object"},
		{"transitions not a list", "  transitions:\n", "  transitions: {}\n  rows:\n", "at '/machine/transitions': got object, want array"},
		{"declarations not a mapping", "    bounded: {description", "    - {description", "at '/machine/invariants': got array, want object"},
		{"row not a mapping", "    - {from: done, on: \"*\", ignore: true}", "    - {from: done, on: \"*\", ignore: true}\n    - just text", "at '/machine/transitions/8': got string, want object"},
		{"to not a name", "to: busy,", "to: [busy],", "at '/machine/transitions/0/to': got array, want string"},
		{"on a mapping", "on: start, to: busy", "on: {start: 1}, to: busy", "at '/machine/transitions/0/on': got object"},
		{"\"*\" inside a list", "except: [done]", "except: [done, \"*\"]", "at '/machine/transitions/6/except/1': '*' does not match"},
		{"\"*\" as an action", "do: [work], set", "do: \"*\", set", "at '/machine/transitions/0/do': '*' does not match"},
		{"invalid name", "    work: {description: Work., max: 1}", "    work_1: {description: Work., max: 1}", "invalid propertyName 'work_1'"},
		{"name too long", "  name: m\n", "  name: m" + strings.Repeat("x", 64) + "\n", "at '/machine/name': 'mxxx"},
		{"integer expected", "min: 0, max: 3", "min: 0, max: three", "at '/machine/variables/n/max': got string, want integer"},
		{"action max out of range", "max: 1}", "max: 9}", "at '/machine/actions/work/max': maximum"},
		{"expression not a scalar", "expr: \"n <= 3\"", "expr: [n, 3]", "at '/machine/invariants/bounded/expr': got array"},
		{"text not a scalar", "why: Busy.", "why: [Busy]", "at '/machine/transitions/1/why': got array, want string"},
		{"row with two answers", "outcome: \"*\", ignore: true", "outcome: \"*\", ignore: true, to: done", "at '/machine/transitions/5': 'allOf' failed"},
		{"row with no answer", "{from: busy, on: start, reject: true, why: Busy.}", "{from: busy, on: start, why: Busy.}", "at '/machine/transitions/1': 'allOf' failed"},
		{"except without \"*\"", "{from: \"*\", except: [done]", "{from: [idle, busy], except: [done]", "at '/machine/transitions/6/from': value must be '*'"},
		{"unknown variable type", "{type: int, min", "{type: uint8, min", "at '/machine/variables/n/type': value must be one of"},
		{"bool with max", "{type: bool, initial", "{type: bool, max: 1, initial", "at '/machine/variables/fast': 'allOf' failed"},
		{"int without max", "min: 0, max: 3, initial", "min: 0, initial", "at '/machine/variables/n': 'allOf' failed"},
		{"errno not an errno name", "{EAGAIN: bad,", "{eagain: bad,", "invalid propertyName 'eagain'"},
		{"errno entry unknown key", "why: Interrupted.}", "reason: Interrupted.}", "at '/classifiers/call/errors/EINTR': 'anyOf' failed"},
		{"group without when or on", "do: [work], set", "do: [{do: [work]}], set", "at '/machine/transitions/0/do'"},
		{"\"*\" in a trigger list", "on: start, to: busy", "on: [start, \"*\"], to: busy", "at '/machine/transitions/0/on'"},
		{"trigger not a string", "on: start, to: busy", "on: [start, {result: ok}], to: busy", "at '/machine/transitions/0/on'"},
		{"classifier without default", "    default: bad\n", "", "at '/classifiers/call': missing property 'default'"},
	}
	for _, m := range mutations {
		if strings.Count(base, m.old) != 1 {
			t.Errorf("%s: %q occurs %d times in the base spec, want once", m.what, m.old, strings.Count(base, m.old))
			continue
		}
		src := strings.Replace(base, m.old, m.new, 1)
		if err := load(src); err == nil {
			t.Errorf("%s: gen.Load accepts the mutated spec; the mutation is not an error", m.what)
			continue
		}
		v, err := specJSON([]byte(src))
		if err != nil {
			t.Errorf("%s: the mutated spec is not YAML, so the schema is not what rejects it: %v", m.what, err)
			continue
		}
		switch err := sch.Validate(v); {
		case err == nil:
			t.Errorf("%s: the parser rejects the spec, the schema accepts it:\n%s", m.what, src)
		case !strings.Contains(err.Error(), m.want):
			t.Errorf("%s: the schema rejects the spec, but not with %q:\n%v", m.what, m.want, err)
		}
	}
}

// TestSchemaDescribesEverything checks that every definition and every
// property of the schema has a description, which editors show on hover.
func TestSchemaDescribesEverything(t *testing.T) {
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	root := doc.(map[string]any)
	need := func(where string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: not a schema object", where)
			return
		}
		if d, _ := m["description"].(string); d == "" {
			t.Errorf("%s has no description", where)
		}
	}
	need("the root", root)
	defs, _ := root["$defs"].(map[string]any)
	if len(defs) == 0 {
		t.Fatal("the schema has no $defs")
	}
	props := func(where string, v any) {
		m, _ := v.(map[string]any)
		ps, _ := m["properties"].(map[string]any)
		for k, p := range ps {
			need(where+"/properties/"+k, p)
		}
	}
	props("", root)
	for k, d := range defs {
		need("$defs/"+k, d)
		props("$defs/"+k, d)
	}
}
