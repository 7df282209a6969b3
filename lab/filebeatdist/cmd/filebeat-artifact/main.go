// Command filebeat-artifact builds the lab's filebeat distribution
// (package filebeatdist), keeps it in the cache directory, and prints the
// inventory lines that point the filebeat role at it:
//
//	go run ./lab/filebeatdist/cmd/filebeat-artifact [-cache DIR]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"

	"github.com/trafficlab/trafficlab/lab/filebeatdist"
)

func main() {
	log.SetFlags(0)
	cache := flag.String("cache", filebeatdist.DefaultCacheDir, "where built distributions are kept")
	flag.Parse()
	a, err := filebeatdist.Build(context.Background(), *cache, log.Printf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("# filebeat %s built from its Go module, for a lab inventory:\nfilebeat:\n  artifact: %s\n  sha512: %s\n", filebeatdist.Version, a.Path, a.SHA512)
}
