#!/bin/sh
# pipeline.sh measures the consumer's sustained pipeline: filebeat 7.17
# JSON events already in the topic of a kfake broker running in its own
# process, timed from the consumers' start until every line is committed
# in a real MariaDB, with 1,000,000 distinct client addresses within an
# hour. For each count of -consumers it runs that many consumer processes
# in one consumer group, each pinned to a core (-pin=false lets them
# roam), and prints lines/s once every one of them holds partitions, the
# ratio to one consumer, the cores used and each one's peak RSS.
# Needs MariaDB (scripts/test-deps.sh installs it).
#
#   consumer/bench/pipeline.sh                 # 1,000,000 lines, 4 partitions, 1 consumer
#   consumer/bench/pipeline.sh -lines 3000000 -partitions 6 -consumers 1,2,3   # a consumer group
#   consumer/bench/pipeline.sh -lines 2000000 -partitions 8 -compression none
set -eu
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/consumer" ./consumer
go build -o "$tmp/pipeline" ./consumer/bench/pipeline
"$tmp/pipeline" -consumer "$tmp/consumer" "$@"
