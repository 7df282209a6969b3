package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary files to Parse: it must never panic, must
// either return an inventory or at least one problem with a sane line, and
// an inventory it accepts hands nothing unsafe to the hosts (assertSafe).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("examples/*.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base))
	f.Add([]byte(full))
	f.Add([]byte(minimal))
	f.Add([]byte("x: &a [*a]\ncluster: &c {<<: *c}\nhosts: [*a, {<<: [*c, *a]}]\n"))
	f.Add([]byte("kafka: {properties: {a: ${X}, b: $$}}\nlb: {vip: '::1/64'}\n"))
	f.Add([]byte(fields["log.dirs"].yaml(`"/data/a, /etc"`)))
	f.Add([]byte(fields["lb.auth_pass"].yaml(`"a b#"`)))
	f.Add([]byte(fields["kafka.artifact"].yaml(`"https://h/.."`)))
	lookup := env(map[string]string{"X": "1", "PASS": "secret"})
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse("fuzz.yaml", data, lookup)
		if err == nil {
			if inv == nil {
				t.Fatal("nil inventory without error")
			}
			assertSafe(t, inv)
			return
		}
		var ps Problems
		if !errors.As(err, &ps) || len(ps) == 0 {
			t.Fatalf("error is not a non-empty Problems: %v", err)
		}
		for _, p := range ps {
			if p.File != "fuzz.yaml" || p.Line < 0 || p.Msg == "" {
				t.Fatalf("bad problem %#v", p)
			}
		}
		// The same input gives the same report: nothing depends on map
		// order.
		if _, err2 := Parse("fuzz.yaml", data, lookup); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("second run differs:\n%v\n---\n%v", err, err2)
		}
	})
}
