package step

import "testing"

// The helpers' identities: what the engine keys on, whatever the names
// people read say.
func TestIDs(t *testing.T) {
	for _, tt := range []struct {
		s        Step
		id, path string
		name     string
	}{
		{File(FileSpec{Path: "/etc/chrony/chrony.conf"}), "file:/etc/chrony/chrony.conf", "/etc/chrony/chrony.conf", "file /etc/chrony/chrony.conf"},
		{Block("/etc/hosts", "hosts", "x"), "block:/etc/hosts#hosts", "/etc/hosts", "block hosts in /etc/hosts"},
		{BlockAbsent("/etc/hosts", "hosts"), "-block:/etc/hosts#hosts", "/etc/hosts", "remove block hosts from /etc/hosts"},
		{FileAbsent("/etc/x.conf"), "-file:/etc/x.conf", "/etc/x.conf", "remove /etc/x.conf"},
		{Service("chrony.service", Running), "service:chrony.service", "", "service chrony.service running"},
		{Service("chrony.service", Stopped), "-service:chrony.service", "", "service chrony.service stopped"},
		{User("kafka", "/var/lib/kafka"), "user:kafka", "", "user kafka"},
		{TreeAbsent("/opt/kafka"), "-directory:/opt/kafka", "", "remove /opt/kafka"},
		{Command("hostname web-1", "true", "true"), "command:hostname web-1", "", "hostname web-1"},
		{OnChange("reload systemd", "systemctl daemon-reload"), "on-change:reload systemd", "", "reload systemd"},
	} {
		if got := tt.s.ID.String(); got != tt.id {
			t.Errorf("%s: id %q, want %q", tt.s.Name, got, tt.id)
		}
		if got := tt.s.ID.Path(); got != tt.path {
			t.Errorf("%s: path %q, want %q", tt.s.Name, got, tt.path)
		}
		if tt.s.Name != tt.name {
			t.Errorf("name %q, want %q", tt.s.Name, tt.name)
		}
		if tt.s.ID.Absent != (tt.id[0] == '-') {
			t.Errorf("%s: absent %v", tt.id, tt.s.ID.Absent)
		}
	}
}
