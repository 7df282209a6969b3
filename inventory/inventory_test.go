package inventory

import "testing"

// The site's address: the port only when it is not 80, IPv6 in brackets.
func TestSiteURL(t *testing.T) {
	for _, tt := range []struct {
		vip  string
		port int
		host string
		want string
	}{
		{"10.0.0.100/24", 80, "www.sc.com", "http://www.sc.com/"},
		{"10.0.0.100/24", 8080, "www.sc.com", "http://www.sc.com:8080/"},
		{"10.0.0.100/24", 80, "", "http://10.0.0.100/"},
		{"10.0.0.100/24", 8080, "", "http://10.0.0.100:8080/"},
		{"fd00::64/64", 80, "", "http://[fd00::64]/"},
		{"fd00::64/64", 8080, "", "http://[fd00::64]:8080/"},
	} {
		l := LB{VIP: tt.vip, Port: tt.port}
		got := l.VIPURL("/")
		if tt.host != "" {
			got = l.SiteURL(tt.host, "/")
		}
		if got != tt.want {
			t.Errorf("%s port %d host %q: %s, want %s", tt.vip, tt.port, tt.host, got, tt.want)
		}
	}
}
