#!/usr/bin/env bash
# Prints a file:// URL of the Go vulnerability database for govulncheck.
# Its own server cannot be reached from here, but the database's source,
# the module golang.org/x/vulndb, is on the Go module proxy: its OSV files
# are indexed once with that module's own indexdb into a cache outside the
# work tree, keyed by the pinned version (VULNDB), so a scan is repeatable
# and a second one needs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
version=${VULNDB:?VULNDB names the golang.org/x/vulndb version}
if [ "$(id -u)" = 0 ]; then cache=/var/cache/trafficlab; else cache=${XDG_CACHE_HOME:-$HOME/.cache}/trafficlab; fi
out=$cache/vulndb/$version
if [ ! -f "$out/index/db.json" ]; then
	echo "indexing the Go vulnerability database $version (once)..." >&2
	src=$("$GO" mod download -json golang.org/x/vulndb@"$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	rm -rf "$out.tmp"
	mkdir -p "$(dirname "$out")"
	"$GO" run golang.org/x/vulndb/cmd/indexdb@"$version" -vulns "$src/data/osv" -out "$out.tmp" >&2
	rm -rf "$out"
	mv "$out.tmp" "$out"
fi
echo "file://$out"
