// Package network builds the lab's private network on the host: one bridge,
// and per machine a network namespace with a veth pair whose host side is a
// bridge port. Everything it creates carries the "tlab" prefix, and it only
// ever lists, changes or deletes things with that prefix.
package network

import (
	"crypto/sha256"
	"encoding/hex"
)

// Prefix starts the name of everything the lab creates on the host.
const Prefix = "tlab"

// Bridge is the host bridge every machine's veth is attached to.
const Bridge = Prefix + "0"

// maxIfName is Linux's limit on interface names (IFNAMSIZ-1).
const maxIfName = 15

// Netns is the network namespace of a machine (a file in /run/netns; no
// length limit, but kept in step with the link names).
func Netns(machine string) string { return Prefix + "-" + machine }

// Links returns the host-side veth name and its peer's name for a machine:
// "tlab-<name>" and "tlab-<name>-p". When that would exceed 15 characters the
// name is shortened the same way every time — its first four characters plus
// four hex digits of its hash — so both ends stay unique and recognisable.
func Links(machine string) (host, peer string) {
	base := Prefix + "-" + machine
	if len(base)+2 > maxIfName {
		sum := sha256.Sum256([]byte(machine))
		short := machine
		if len(short) > 4 {
			short = short[:4]
		}
		base = Prefix + "-" + short + hex.EncodeToString(sum[:])[:4]
	}
	return base, base + "-p"
}

// GuestIf is the interface name inside a machine: the peer is renamed so
// software in the machine sees a conventional eth0.
const GuestIf = "eth0"
