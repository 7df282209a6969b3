package inventory

import "testing"

func TestOrdinal(t *testing.T) {
	inv, err := Load("examples/seed-centos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		role Role
		host string
		want int
	}{
		{RoleKafka, "kafka-1", 1}, {RoleKafka, "kafka-3", 3}, {RoleZooKeeper, "kafka-2", 2}, {RoleKafka, "lb-1", 0},
	} {
		var h Host
		for _, x := range inv.Hosts {
			if x.Name == tt.host {
				h = x
			}
		}
		if got := inv.Ordinal(tt.role, h); got != tt.want {
			t.Errorf("Ordinal(%s, %s) = %d, want %d", tt.role, tt.host, got, tt.want)
		}
	}
}
