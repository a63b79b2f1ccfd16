package gen

import (
	"sort"
	"strings"
)

// suggest returns "; did you mean %q?" with the declared name closest to an
// unknown one, or "" when none is close: a name that differs only in case
// first, then one within two edits (insert, delete, substitute, or swap two
// neighbours) that is not shorter than the edits.
func (idx nameIndex) suggest(name string) string {
	if name == "" {
		return ""
	}
	var names []string
	for n := range idx {
		names = append(names, n)
	}
	sort.Strings(names) // a tie goes to the first in order, every run
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return "; did you mean \"" + n + "\"?"
		}
	}
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(strings.ToLower(n), strings.ToLower(name)); d < bestD && d < len(n) {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean \"" + best + "\"?"
}

// editDistance is the optimal string alignment distance of a and b.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
