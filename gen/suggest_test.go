package gen

import (
	"strings"
	"testing"
)

// TestDidYouMean: an unknown action, state, event or variable that is a
// case-only or a small typo of a declared one names it.
func TestDidYouMean(t *testing.T) {
	spec := `machine:
  name: m
  description: A machine.
  states:
    idle: {description: Idle., initial: true}
    busy: {description: Busy.}
  events:
    start: {description: Start.}
  variables:
    count: {type: int, min: 0, max: 3, initial: 0, description: A count.}
  actions:
    closeFD: {description: Close.}
  transitions:
    - {from: idle, on: start, to: busy, do: [closeFd], set: {cuont: 1}}
    - {from: busy, on: strat, to: idel}
`
	_, err := Load(Source{Path: "m.yaml", Data: []byte(spec)})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`unknown action "closeFd"; did you mean "closeFD"?`,
		`unknown variable "cuont"; did you mean "count"?`,
		`unknown event "strat"; did you mean "start"?`,
		`unknown state "idel"; did you mean "idle"?`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if idx := (nameIndex{"readable": 0, "writable": 1}); idx.suggest("zz") != "" {
		t.Errorf("suggested %q for a name close to none", idx.suggest("zz"))
	}
}
