package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
)

func TestConfirmation(t *testing.T) {
	inv := &inventory.Inventory{Cluster: inventory.Cluster{Name: "lab"}, Hosts: []inventory.Host{{Name: "kafka-1"}, {Name: "db-1"}}}
	for _, tt := range []struct {
		stdin string
		ok    bool
		says  string
	}{
		{"lab\n", true, "removes everything on kafka-1, db-1"},
		{"lab", true, "Type the cluster name (lab)"},
		{"", false, "provision destroy: no confirmation on stdin; nothing done"},
		{"yes\n", false, "does not match"},
	} {
		var w bytes.Buffer
		err := confirm(strings.NewReader(tt.stdin), &w, inv, "destroy", "removes everything on kafka-1, db-1")
		if (err == nil) != tt.ok || !strings.Contains(w.String(), tt.says) {
			t.Errorf("stdin %q: err %v, said %q; want ok=%v and %q", tt.stdin, err, w.String(), tt.ok, tt.says)
		}
	}
}
