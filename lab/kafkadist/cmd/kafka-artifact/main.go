// Command kafka-artifact assembles an Apache Kafka distribution from Maven
// Central (package kafkadist), keeps it in the cache directory, and prints
// the inventory lines that point the kafka role at it:
//
//	go run ./lab/kafkadist/cmd/kafka-artifact [-version 3.9.2|4.4.0] [-cache DIR]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"strings"

	"github.com/trafficlab/trafficlab/lab/kafkadist"
)

func main() {
	log.SetFlags(0)
	version := flag.String("version", kafkadist.ZooKeeperVersion, "the Kafka release: "+strings.Join(kafkadist.Versions(), ", "))
	cache := flag.String("cache", kafkadist.DefaultCacheDir, "where built distributions are kept")
	flag.Parse()
	a, err := kafkadist.Build(context.Background(), *version, *cache, log.Printf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("# Apache Kafka %s assembled from Maven Central (%d jars, %.1f MB), for an inventory:\nkafka:\n  version: %s\n  artifact: %s\n  sha512: %s\n",
		*version, a.Jars, float64(a.Bytes)/1e6, *version, a.Path, a.SHA512)
}
