package facts

import (
	"strings"
	"testing"
)

func TestParseInterface(t *testing.T) {
	const out = `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host noprefixroute \       valid_lft forever preferred_lft forever
2: host0    inet 10.231.0.13/24 brd 10.231.0.255 scope global host0\       valid_lft forever preferred_lft forever
2: host0    inet 10.231.0.254/24 scope global secondary host0\       valid_lft forever preferred_lft forever
3: ens3@if7    inet6 fd00::5/64 scope global \       valid_lft forever preferred_lft forever
`
	for _, tt := range []struct{ addr, want, err string }{
		{addr: "10.231.0.13", want: "host0"},
		{addr: "fd00::5", want: "ens3"},
		{addr: "127.0.0.1", want: "lo"},
		{addr: "10.231.0.99", err: "no network interface carries 10.231.0.99"},
		{addr: "kafka-1", err: `address "kafka-1"`},
	} {
		got, err := ParseInterface(out, tt.addr)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %q, %v; want error %q", tt.addr, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.addr, got, err, tt.want)
		}
	}
}
