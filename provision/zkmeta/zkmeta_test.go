package zkmeta

import "testing"

// What brokers and KRaft controllers write to /controller (Kafka 3.9).
func TestHolder(t *testing.T) {
	for in, want := range map[string]int{
		`{"version":1,"brokerid":2,"timestamp":"1764000000000"}`:                             2,
		`{"version":2,"brokerid":3001,"timestamp":"1764000000000","kraftControllerEpoch":7}`: 3001,
		`{"brokerid":0}`: 0,
	} {
		if got, err := holder([]byte(in)); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{``, `{}`, `{"brokerid":"x"}`, `not json`} {
		if got, err := holder([]byte(in)); err == nil {
			t.Errorf("%q: %d, want an error", in, got)
		}
	}
}
