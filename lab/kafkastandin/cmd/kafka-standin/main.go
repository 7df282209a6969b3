// Command kafka-standin is the program inside the lab's Kafka stand-in
// distribution (see package kafkastandin): bin/kafka-server-start.sh runs
// `kafka-standin server`, bin/kafka-storage.sh `kafka-standin storage`.
// It is a test stand-in, not Kafka.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/trafficlab/trafficlab/lab/kafkastandin/broker"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("kafka-standin: ")
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = server(os.Args[2:])
	case "storage":
		err = storage(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		log.Fatal(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kafka-standin server server.properties [--override key=value]...\n       kafka-standin storage format|random-uuid|info ...")
	os.Exit(2)
}

// server is kafka-server-start.sh: the configuration file, then
// --override key=value pairs.
func server(args []string) error {
	if len(args) < 1 {
		return errors.New("USAGE: kafka-server-start.sh [-daemon] server.properties [--override property=value]*")
	}
	var overrides []string
	for i := 1; i < len(args); i++ {
		if args[i] != "--override" || i+1 == len(args) {
			return fmt.Errorf("unexpected argument %q", args[i])
		}
		i++
		overrides = append(overrides, args[i])
	}
	props, err := broker.ReadProperties(args[0], overrides...)
	if err != nil {
		return err
	}
	cfg, err := broker.ParseConfig(props)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	// Like Kafka, also log to server.log in LOG_DIR when it is set (the
	// kafka role's unit sets it).
	if dir := os.Getenv("LOG_DIR"); dir != "" {
		if f, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			defer f.Close()
			w := io.MultiWriter(os.Stderr, f)
			log.SetOutput(w)
			broker.LogOutput = w
		}
	}
	log.SetFlags(log.LstdFlags)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log.Printf("trafficlab Kafka stand-in (kfake, test only), broker %d, data in %s", cfg.ID, cfg.DataDir)
	err = broker.Run(ctx, cfg, log.Printf)
	if err == nil || ctx.Err() != nil {
		log.Printf("stopped")
		return nil
	}
	return err
}

// storage is the subset of kafka-storage.sh that provisioning uses, with
// Kafka's flags.
func storage(args []string) error {
	if len(args) < 1 {
		return errors.New("usage: kafka-storage.sh format|random-uuid|info ...")
	}
	fs := flag.NewFlagSet("kafka-storage "+args[0], flag.ContinueOnError)
	var config, clusterID, release string
	var ignore, standalone, noInitial bool
	for _, n := range []string{"c", "config"} {
		fs.StringVar(&config, n, "", "the broker's server.properties")
	}
	for _, n := range []string{"t", "cluster-id"} {
		fs.StringVar(&clusterID, n, "", "the cluster id")
	}
	for _, n := range []string{"g", "ignore-formatted"} {
		fs.BoolVar(&ignore, n, false, "skip directories already formatted")
	}
	for _, n := range []string{"r", "release-version"} {
		fs.StringVar(&release, n, "", "accepted and ignored")
	}
	fs.BoolVar(&standalone, "standalone", false, "accepted and ignored")
	fs.BoolVar(&noInitial, "no-initial-controllers", false, "accepted and ignored")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "random-uuid":
		fmt.Println(broker.RandomUUID())
		return nil
	case "format":
		if config == "" || clusterID == "" {
			return errors.New("format needs --config and --cluster-id")
		}
		props, err := broker.ReadProperties(config)
		if err != nil {
			return err
		}
		return broker.Format(props, clusterID, ignore, os.Stdout)
	case "info":
		props, err := broker.ReadProperties(config)
		if err != nil {
			return err
		}
		cfg, err := broker.ParseConfig(props)
		if err != nil {
			return err
		}
		meta, err := broker.ReadMeta(cfg.DataDir)
		if err != nil {
			return err
		}
		if meta == nil {
			fmt.Printf("%s is not formatted.\n", cfg.DataDir)
			return nil
		}
		fmt.Printf("Found log directory:\n  %s\n\nFound metadata: {cluster.id=%s, node.id=%s}\n", cfg.DataDir, meta["cluster.id"], meta["node.id"])
		return nil
	}
	return fmt.Errorf("unknown storage command %q", args[0])
}
