package step

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Progress returns an observer that prints one short line per step result,
// with the time elapsed since start:
//
//	[  4.2s] kafka-1  file /etc/hosts  changed (0.3s)
//
// In dry-run the change itself follows, indented.
func Progress(w io.Writer, start time.Time) func(Result) {
	return func(r Result) {
		fmt.Fprintf(w, "[%6.1fs] %-10s %s  %s (%.1fs)\n",
			time.Since(start).Seconds(), r.Host, r.Step, r.Status, r.Elapsed.Seconds())
		if r.Err != nil {
			fmt.Fprintf(w, "          %s\n", indent(r.Err.Error()))
		}
		if r.Status == WouldChange && r.Change != nil {
			fmt.Fprintf(w, "          %s\n", r.Change.Summary)
			if r.Change.Diff != "" {
				fmt.Fprintf(w, "          %s\n", indent(strings.TrimRight(r.Change.Diff, "\n")))
			}
		}
	}
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n          ") }
