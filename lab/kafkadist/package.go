package kafkadist

import (
	"fmt"
	"strings"

	"github.com/trafficlab/trafficlab/lab/tarball"
)

// Package makes the distribution tarball of r around its jars (file name →
// content): libs/, trafficlab's bin/ and config/, and a README.md saying
// what it is and how it was made.
func Package(r Release, jars map[string][]byte) ([]byte, error) {
	if len(jars) == 0 {
		return nil, fmt.Errorf("kafka %s: no jars to package", r.Version)
	}
	files := map[string]tarball.File{
		"README.md":                 {Mode: 0o644, Content: []byte(r.readme())},
		"bin/kafka-run-class.sh":    {Mode: 0o755, Content: []byte(r.runClass())},
		"bin/kafka-server-start.sh": {Mode: 0o755, Content: []byte(serverStart)},
		"bin/kafka-server-stop.sh":  {Mode: 0o755, Content: []byte(serverStop)},
		"bin/kafka-storage.sh":      {Mode: 0o755, Content: []byte(r.storage())},
		"config/server.properties":  {Mode: 0o644, Content: []byte(sampleConfig)},
	}
	server, tools := log4jServer, log4jTools
	if r.Major() != 3 {
		server, tools = log4j2Server, log4j2Tools
	}
	files["config/"+r.logFile("")] = tarball.File{Mode: 0o644, Content: []byte(server)}
	files["config/"+r.logFile("tools-")] = tarball.File{Mode: 0o644, Content: []byte(tools)}
	for name, b := range jars {
		files["libs/"+name] = tarball.File{Mode: 0o644, Content: b}
	}
	return tarball.Write(r.TopDir(), files)
}

// logFile is the name of a logging configuration in config/: prefix ""
// for the broker's, "tools-" for the command-line tools'.
func (r Release) logFile(prefix string) string {
	if r.Major() == 3 {
		return prefix + "log4j.properties"
	}
	return prefix + "log4j2.properties"
}

// logOption is the JVM flag that points the logging library at a
// configuration of config/.
func (r Release) logOption(prefix string) string {
	if r.Major() == 3 {
		return "-Dlog4j.configuration=file:$base/config/" + r.logFile(prefix)
	}
	return "-Dlog4j2.configurationFile=$base/config/" + r.logFile(prefix)
}

func (r Release) runClass() string {
	return `#!/bin/sh
# trafficlab's launcher for Apache Kafka's jars (see ../README.md): runs a
# Java class with libs/ on its class path. Environment:
#   JAVA_HOME                   the Java (17 or newer) to run; default: java on PATH
#   KAFKA_HEAP_OPTS             heap flags; default -Xmx256m
#   KAFKA_JVM_PERFORMANCE_OPTS  GC flags; default G1 with short pauses
#   LOG_DIR                     where the broker writes server.log; default ../logs
#   KAFKA_LOG4J_OPTS            the logging configuration; default config/` + r.logFile("") + `
#   KAFKA_OPTS                  any other JVM flags
set -eu
if [ $# -lt 1 ]; then
  echo "USAGE: $0 CLASS [ARGS...]" >&2
  exit 1
fi
base=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
java=java
if [ -n "${JAVA_HOME:-}" ]; then
  java=$JAVA_HOME/bin/java
fi
LOG_DIR=${LOG_DIR:-$base/logs}
mkdir -p "$LOG_DIR"
class=$1
shift
# The option variables hold several flags each: split on purpose.
# shellcheck disable=SC2086
exec "$java" ${KAFKA_HEAP_OPTS:--Xmx256m} \
  ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true} \
  -Dkafka.logs.dir="$LOG_DIR" ${KAFKA_LOG4J_OPTS:-` + r.logOption("") + `} ${KAFKA_OPTS:-} \
  -cp "$base/libs/*" "$class" "$@"
`
}

const serverStart = `#!/bin/sh
# trafficlab: runs a Kafka broker (kafka.Kafka) in the foreground with the
# given server.properties, as systemd wants it. The heap defaults to 1 GiB,
# as in Apache's script; set KAFKA_HEAP_OPTS to change it.
if [ $# -lt 1 ]; then
  echo "USAGE: $0 server.properties [--override property=value]*" >&2
  exit 1
fi
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}
export KAFKA_HEAP_OPTS
exec "$(dirname -- "$0")/kafka-run-class.sh" kafka.Kafka "$@"
`

const serverStop = `#!/bin/sh
# trafficlab: stops every Kafka broker on this host with SIGTERM, Kafka's
# clean stop (leaderships handed over, logs closed).
pids=$(pgrep -f 'kafka\.Kafka ') || {
  echo "No kafka server to stop" >&2
  exit 1
}
# shellcheck disable=SC2086
kill -TERM $pids
`

func (r Release) storage() string {
	return `#!/bin/sh
# trafficlab: KRaft's storage tool (format, random-uuid, info), with
# Kafka's own flags. It logs warnings to stderr only.
base=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
KAFKA_LOG4J_OPTS=${KAFKA_LOG4J_OPTS:-` + r.logOption("tools-") + `}
export KAFKA_LOG4J_OPTS
exec "$base/bin/kafka-run-class.sh" kafka.tools.StorageTool "$@"
`
}

const sampleConfig = `# A sample only: trafficlab's provision writes each broker's configuration
# (/etc/trafficlab/kafka/server.properties) and passes it to
# bin/kafka-server-start.sh.
broker.id=0
listeners=PLAINTEXT://:9092
log.dirs=/tmp/kafka-logs
zookeeper.connect=localhost:2181
`

// Logging: INFO to stdout (the journal, under systemd) and to
// $kafka.logs.dir/server.log, rolled at 10 MB, five kept.
const log4jServer = `# trafficlab's logging for the Kafka broker (reload4j): INFO to stdout,
# which systemd keeps in the journal, and to ${kafka.logs.dir}/server.log,
# rolled at 10 MB with five kept.
log4j.rootLogger=INFO, stdout, server
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.appender.server=org.apache.log4j.RollingFileAppender
log4j.appender.server.File=${kafka.logs.dir}/server.log
log4j.appender.server.MaxFileSize=10MB
log4j.appender.server.MaxBackupIndex=5
log4j.appender.server.layout=org.apache.log4j.PatternLayout
log4j.appender.server.layout.ConversionPattern=[%d] %p %m (%c)%n
# Every request at DEBUG would drown the rest.
log4j.logger.kafka.request.logger=WARN
`

const log4jTools = `# trafficlab's logging for Kafka's command-line tools: warnings to stderr.
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
`

const log4j2Server = `# trafficlab's logging for the Kafka broker (log4j2): INFO to stdout,
# which systemd keeps in the journal, and to ${sys:kafka.logs.dir}/server.log,
# rolled at 10 MB with five kept.
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
appender.server.type = RollingFile
appender.server.name = SERVER
appender.server.fileName = ${sys:kafka.logs.dir}/server.log
appender.server.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 10MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 5
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
rootLogger.appenderRef.server.ref = SERVER
# Every request at DEBUG would drown the rest.
logger.request.name = kafka.request.logger
logger.request.level = warn
`

const log4j2Tools = `# trafficlab's logging for Kafka's command-line tools: warnings to stderr.
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
`

func (r Release) readme() string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Apache Kafka %[1]s, assembled by trafficlab's lab from Maven Central

This is Apache Kafka's broker as Apache publishes it on Maven Central
(org.apache.kafka:kafka_%[2]s:%[1]s) with its runtime dependencies and the
logging binding Apache's tarball ships beside them, laid out like Apache's
tarball (%[3]s/ with bin/, config/, libs/). The jars are Apache's and the
other projects' own, unchanged; only bin/, config/ and this file are
trafficlab's (lab/kafkadist), because no published artifact carries them.
It replicates, elects leaders and keeps an ISR like any Kafka %[1]s.

bin/kafka-server-start.sh runs the broker (kafka.Kafka) in the foreground;
bin/kafka-storage.sh is KRaft's storage tool (kafka.tools.StorageTool);
bin/kafka-run-class.sh runs any class of libs/ (JAVA_HOME, KAFKA_HEAP_OPTS,
LOG_DIR, KAFKA_LOG4J_OPTS, KAFKA_OPTS as in Apache's scripts). Not here:
the other command-line tools (kafka-topics.sh, ...: trafficlab manages
topics over the Kafka protocol), Kafka Connect and Kafka Streams.

Every jar is pinned (Maven's dependencyManagement, from
lab/kafkadist/lock/kafka-%[1]s.txt); the build fails when Maven resolves any
other set. libs/ holds %[4]d jars:

`, r.Version, Scala, r.TopDir(), len(r.Lock))
	for _, c := range r.Lock {
		fmt.Fprintf(&b, "- %s\n", c)
	}
	return b.String()
}
