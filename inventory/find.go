package inventory

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// LabFile is where `lab up` writes the inventory of the local lab's
// machines, so that provision finds the lab without flags.
const LabFile = "/var/lib/trafficlab/lab/inventory.yaml"

// DefaultFile is the inventory looked for in the current directory.
const DefaultFile = "inventory.yaml"

// Find picks the inventory when the user named none: DefaultFile in the
// current directory, else the local lab's.
func Find() (string, error) { return find(DefaultFile, LabFile) }

func find(candidates ...string) (string, error) {
	for _, f := range candidates {
		if _, err := os.Stat(f); err == nil {
			return f, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("looking for an inventory: %w", err)
		}
	}
	return "", fmt.Errorf("no inventory given, none in ./%s and no lab (%s): choose one with -i FILE, or create a lab with `lab up`", DefaultFile, LabFile)
}
