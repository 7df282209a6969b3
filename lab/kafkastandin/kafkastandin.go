// Package kafkastandin builds the lab's Kafka stand-in distribution: a
// tarball shaped exactly like Apache Kafka's (kafka_2.13-3.9.1/ with
// bin/kafka-server-start.sh, bin/kafka-server-stop.sh, bin/kafka-storage.sh,
// config/ and libs/), whose scripts run a Go program serving the Kafka
// protocol with franz-go's kfake (package broker). Apache's tarball cannot
// be downloaded in the lab; pointing the lab inventory's kafka.artifact at
// this one lets provision's real Kafka code path run unchanged.
//
// It is a test stand-in, never a default: the distribution says so in its
// README, and its trafficlab-artifact.yaml declares `replication: none`,
// which provision reads as a capability of the artifact (package
// provision/role/kafka) to skip what needs replicas, saying why.
package kafkastandin

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/trafficlab/trafficlab/lab/tarball"
)

// The Apache release whose shape the stand-in copies: its directory and
// file name are what the kafka role derives the install directory from.
const (
	Scala   = "2.13"
	Version = "3.9.1"
)

// TopDir is the distribution's top directory, and its file name without
// .tgz.
func TopDir() string { return "kafka_" + Scala + "-" + Version }

// DefaultCacheDir keeps built stand-ins, outside any work tree.
const DefaultCacheDir = "/var/cache/trafficlab/artifacts"

// Artifact is a built distribution: where it is and its checksum, what the
// inventory's kafka.artifact and kafka.sha512 take.
type Artifact struct {
	Path   string
	SHA512 string
}

// Build compiles the stand-in program from the module at moduleDir (for
// the machine's own architecture: the lab's machines share it), packages
// it, and keeps the tarball under cacheDir in a directory named after its
// checksum. The build is reproducible, so an unchanged stand-in has the
// same path and checksum every time and hosts that have it keep it.
func Build(ctx context.Context, moduleDir, cacheDir string) (Artifact, error) {
	tmp, err := os.MkdirTemp("", "kafka-standin-")
	if err != nil {
		return Artifact{}, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "kafka-standin")
	cmd := exec.CommandContext(ctx, goCommand(), "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w",
		"-o", bin, "./lab/kafkastandin/cmd/kafka-standin")
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return Artifact{}, fmt.Errorf("building the Kafka stand-in: %w\n%s", err, out)
	}
	program, err := os.ReadFile(bin)
	if err != nil {
		return Artifact{}, err
	}
	tgz, err := Package(program)
	if err != nil {
		return Artifact{}, err
	}
	sum := sha512.Sum512(tgz)
	a := Artifact{SHA512: hex.EncodeToString(sum[:])}
	dir := filepath.Join(cacheDir, "kafka-standin-"+a.SHA512[:16])
	a.Path = filepath.Join(dir, TopDir()+".tgz")
	if fi, err := os.Stat(a.Path); err == nil && fi.Size() == int64(len(tgz)) {
		return a, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Artifact{}, err
	}
	part := a.Path + ".part"
	if err := os.WriteFile(part, tgz, 0o644); err != nil {
		return Artifact{}, err
	}
	return a, os.Rename(part, a.Path)
}

// goCommand is the go tool running this program's build, else the one on
// PATH (sudo resets PATH, and Go often lives outside it).
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	for _, p := range []string{filepath.Join(os.Getenv("GOROOT"), "bin", "go"), "/usr/local/go/bin/go"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// FindModule returns the directory of trafficlab's go.mod at or above dir.
func FindModule(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/trafficlab/trafficlab\n") {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", errors.New("not inside trafficlab's source (no go.mod of module github.com/trafficlab/trafficlab above " + dir + ")")
		}
	}
}

// Package makes the distribution tarball around the compiled program.
func Package(program []byte) ([]byte, error) {
	return tarball.Write(TopDir(), map[string]tarball.File{
		"README.md":                 {Mode: 0o644, Content: []byte(readme)},
		"trafficlab-artifact.yaml":  {Mode: 0o644, Content: []byte(capabilities)},
		"bin/kafka-server-start.sh": {Mode: 0o755, Content: []byte(startScript)},
		"bin/kafka-server-stop.sh":  {Mode: 0o755, Content: []byte(stopScript)},
		"bin/kafka-storage.sh":      {Mode: 0o755, Content: []byte(storageScript)},
		"config/server.properties":  {Mode: 0o644, Content: []byte(sampleConfig)},
		"libs/kafka-standin":        {Mode: 0o755, Content: program},
	})
}

const readme = `# trafficlab Kafka stand-in — a test double, not Apache Kafka

This tarball has the shape of Apache Kafka ` + Version + `'s distribution so that
trafficlab's provisioner installs and runs it exactly as it would the real
one, in the lab, where Apache's tarball cannot be downloaded. It is built by
trafficlab's lab (lab/kafkastandin) and must never be used for anything else.

bin/kafka-server-start.sh runs libs/kafka-standin, a Go program that reads
the broker's server.properties and serves the Kafka protocol with franz-go's
kfake: topics, metadata, produce with acks, fetch, consumer groups and
offsets, kept on disk under log.dirs so a restart loses nothing.
bin/kafka-storage.sh format writes meta.properties as Kafka's does.

How several hosts make one cluster: kfake cannot span processes, so one
broker, the primary, runs the whole cluster (KRaft mode: the voter with the
lowest id; ZooKeeper mode: the first broker that started, recorded in
ZooKeeper under /trafficlab-standin/primary). Every other broker forwards
the connections to its listener to the primary, which serves them as that
broker's node. Clients see every broker that is up, with its id and
advertised name, and partition leaders spread over them.

Limits, declared in trafficlab-artifact.yaml (replication: none):

- Each record exists once, in the primary's log.dirs: there is no
  replication, no in-sync replica set worth the name (metadata reports every
  replica in sync), and nothing under-replicated to wait for.
- A broker that stops leaves the metadata and its partitions move to the
  brokers still up (their data is with the primary, so nothing is lost); a
  primary that stops stops the whole cluster until it is back.
- Partition leaders move whenever a broker joins or leaves.
- No SASL/TLS, no quotas worth testing, no JMX, no Kafka CLI tools beyond the
  three scripts.

trafficlab's provision reads trafficlab-artifact.yaml and skips what needs
replication (the Kafka drill, the wait for no under-replicated partitions),
saying why. Apache's tarball has no such file and can do everything.
`

const capabilities = `# What this Kafka distribution can do, read by trafficlab's provision:
# drills and checks that need what it lacks skip themselves, saying why.
name: trafficlab Kafka stand-in
replication: none
notes: a test stand-in built on franz-go's kfake, where one broker holds the only copy of every partition and the others forward to it (see README.md)
`

const startScript = `#!/bin/sh
# trafficlab's Kafka stand-in (a test double, not Kafka: see ../README.md).
# Takes the arguments of Apache Kafka's script of the same name.
if [ $# -lt 1 ]; then
  echo "USAGE: $0 [-daemon] server.properties [--override property=value]*" >&2
  exit 1
fi
base_dir=$(dirname "$0")/..
if [ "$1" = "-daemon" ]; then
  shift
  LOG_DIR=${LOG_DIR:-$base_dir/logs}
  mkdir -p "$LOG_DIR"
  export LOG_DIR
  nohup "$base_dir/libs/kafka-standin" server "$@" >"$LOG_DIR/kafkaServer.out" 2>&1 &
  exit 0
fi
exec "$base_dir/libs/kafka-standin" server "$@"
`

const stopScript = `#!/bin/sh
# trafficlab's Kafka stand-in: stops every stand-in broker on this host, as
# Apache Kafka's script stops every broker (SIGTERM, a clean stop).
pids=$(pgrep -f 'libs/kafka-standin server')
if [ -z "$pids" ]; then
  echo "No kafka server to stop"
  exit 1
fi
kill -s TERM $pids
`

const storageScript = `#!/bin/sh
# trafficlab's Kafka stand-in: format, random-uuid and info, with Kafka's
# flags.
exec "$(dirname "$0")/../libs/kafka-standin" storage "$@"
`

const sampleConfig = `# A sample for trafficlab's Kafka stand-in; trafficlab's provision writes
# the real configuration and passes it to bin/kafka-server-start.sh.
broker.id=0
listeners=PLAINTEXT://:9092
log.dirs=/tmp/kafka-logs
num.partitions=1
zookeeper.connect=localhost:2181
`
