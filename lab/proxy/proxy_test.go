//go:build linux

package proxy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	s := &Squid{
		Dir: "/var/lib/trafficlab/lab/proxy", CacheDir: "/var/cache/trafficlab/packages",
		Listen: netip.MustParseAddr("10.231.0.1"), Subnet: netip.MustParsePrefix("10.231.0.0/24"),
		Mirrors: []string{"mirror-a.example", "mirror-b.example"},
	}
	conf, err := s.Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"http_port 10.231.0.1:3128\n",
		"pid_filename /var/lib/trafficlab/lab/proxy/squid.pid",
		"acl lab src 10.231.0.0/24\n",
		"acl mirrors dstdomain mirror-a.example mirror-b.example\n",
		"http_access allow lab mirrors\nhttp_access deny all\n",
		"cache_dir ufs /var/cache/trafficlab/packages ",
		"maximum_object_size 1024 MB\n",
		`refresh_pattern -i \.(u?deb|ddeb)$ 525600 100% 525600`,
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("squid.conf lacks %q:\n%s", want, conf)
		}
	}
	if s.URL() != "http://10.231.0.1:3128" {
		t.Errorf("URL = %s", s.URL())
	}
	if _, err := (&Squid{}).Config(); err == nil {
		t.Error("a proxy allowing no mirror was configured")
	}
	dir := "/var/lib/trafficlab/lab/proxy"
	if !Is([]string{"/usr/sbin/squid", "-N", "-f", dir + "/squid.conf"}, dir) {
		t.Error("the lab's squid not recognised")
	}
	if Is([]string{"/usr/sbin/squid", "-f", "/etc/squid/squid.conf"}, dir) {
		t.Error("the distribution's squid taken for the lab's")
	}
}
