package inventory

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with an inventory file, at a line of it.
type Problem struct {
	File string
	Line int // 1-based; 0 when the problem has no line (the file as a whole)
	Msg  string
}

// Error formats the problem the way compilers do, FILE:LINE: msg, so editors
// and terminals can jump to it.
func (p Problem) Error() string {
	if p.Line <= 0 {
		return p.File + ": " + p.Msg
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// Problems is every problem found in an inventory. Load returns it as its
// error; use errors.As to get at the entries.
type Problems []Problem

// Error lists the problems one per line, in file order.
func (ps Problems) Error() string {
	sorted := slices.Clone(ps)
	sortProblems(sorted)
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders by file and line; problems on the same line keep the
// order they were found in, which follows the file's structure.
func sortProblems(ps Problems) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
}
