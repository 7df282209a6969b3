// Command standin-artifact builds the lab's Kafka stand-in distribution
// (package kafkastandin), keeps it in the cache directory, and prints the
// inventory lines that point the kafka role at it:
//
//	go run ./lab/kafkastandin/cmd/standin-artifact [-cache DIR]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/trafficlab/trafficlab/lab/kafkastandin"
)

func main() {
	log.SetFlags(0)
	cache := flag.String("cache", kafkastandin.DefaultCacheDir, "where built distributions are kept")
	flag.Parse()
	wd, err := os.Getwd()
	if err != nil {
		log.Fatal(err)
	}
	mod, err := kafkastandin.FindModule(wd)
	if err != nil {
		log.Fatal(err)
	}
	a, err := kafkastandin.Build(context.Background(), mod, *cache)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("# trafficlab's Kafka stand-in (test only), for a lab inventory:\nkafka:\n  artifact: %s\n  sha512: %s\n", a.Path, a.SHA512)
}
