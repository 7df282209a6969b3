//go:build !linux

// Command lab needs Linux (network namespaces, veth, systemd-nspawn); on any
// other system it says so instead of failing to build.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "lab: the lab needs Linux (this is %s): it runs systemd-nspawn machines in network namespaces\n", runtime.GOOS)
	os.Exit(1)
}
