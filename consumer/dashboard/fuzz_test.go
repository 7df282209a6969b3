package dashboard

import (
	"net/url"
	"testing"
	"time"
)

// FuzzQuery parses arbitrary query strings as the API does (range, from,
// to, n and whatever else a client sends): never a panic, and every range
// accepted is one the server can answer within its bounds.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"", "range=1h", "range=7d&n=100", "from=2026-11-01T00:00:00Z&to=2026-11-25T00:00:00Z",
		"from=1700000000&to=1700003600", "from=-62135596800", "from=253402300799", "from=9223372036854775807",
		"from=2026-11-25T03:00:00%2B14:00&to=2026-11-25T03:00:00-14:00", "n=-1", "n=99999999999999999999",
		"n=0x10", "range=1h&range=7d", "from=2026-11-25T03:00:00Z&x=%ff%fe&;;&=&&", "to=2026-11-25T03:00:00Z",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 3, 30, 20, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw) // what net/http gives handlers, errors and all
		if n, err := ParseTopN(q); err == nil && (n < 1 || n > MaxTopN) {
			t.Fatalf("n %d accepted from %q", n, raw)
		}
		r, err := ParseRange(q, now)
		if err != nil {
			if len(err.Error()) > 400 {
				t.Fatalf("error of %d bytes: it quotes the input unbounded", len(err.Error()))
			}
			return
		}
		if !r.From.Before(r.To) || r.To.Sub(r.From) > MaxRange+r.Step {
			t.Fatalf("range %v to %v (step %v) accepted from %q", r.From, r.To, r.Step, raw)
		}
		if r.From.Before(minTime) || r.To.After(maxTime) {
			t.Fatalf("range %v to %v outside the storable years, from %q", r.From, r.To, raw)
		}
		if b := r.Buckets(); b < 1 || b > maxPoints+1 {
			t.Fatalf("%d buckets from %q", b, raw)
		}
		if r.From.Truncate(r.Step) != r.From || r.Step < time.Minute {
			t.Fatalf("from %v not on a multiple of the step %v", r.From, r.Step)
		}
	})
}
