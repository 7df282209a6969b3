package labctl

import (
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
)

// provision finds the lab's inventory without flags only if both sides
// agree on where it is.
func TestInventoryFileIsWhereProvisionLooks(t *testing.T) {
	l := &Lab{StateDir: DefaultStateDir}
	if got := l.InventoryFile(); got != inventory.LabFile {
		t.Fatalf("lab writes its inventory to %s, provision looks in %s", got, inventory.LabFile)
	}
}
