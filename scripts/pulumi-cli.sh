#!/usr/bin/env bash
# Prints the path of a `pulumi` CLI of the version go.mod pins for the SDK,
# building it once from the Go module proxy when neither PATH nor the cache
# has it (the CLI's own installer needs the internet; the module does not).
# The cache is keyed by version, outside the work tree.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
version=$("$GO" list -m -f '{{.Version}}' github.com/pulumi/pulumi/sdk/v3)
if [ "$(id -u)" = 0 ]; then cache=/var/cache/trafficlab; else cache=${XDG_CACHE_HOME:-$HOME/.cache}/trafficlab; fi
out=$cache/pulumi/$version/pulumi

if have=$(command -v pulumi 2>/dev/null) && [ "$("$have" version 2>/dev/null)" = "$version" ]; then
	echo "$have"; exit 0
fi
if [ -x "$out" ] && [ "$("$out" version 2>/dev/null)" = "$version" ]; then
	echo "$out"; exit 0
fi

echo "building the pulumi CLI $version from the Go module proxy (once; about 4 minutes)..." >&2
start=$(date +%s)
"$GO" mod download github.com/pulumi/pulumi/pkg/v3@"$version"
src=$("$GO" mod download -json github.com/pulumi/pulumi/pkg/v3@"$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$src" "$work/pkg"
chmod -R u+w "$work/pkg"
cd "$work/pkg"
# The module's go.mod points the SDK at a sibling directory of its source
# repository; use the published SDK of the same version instead.
"$GO" mod edit -dropreplace=github.com/pulumi/pulumi/sdk/v3
mkdir -p "$(dirname "$out")"
GOFLAGS=-mod=mod "$GO" build -trimpath \
	-ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
	-o "$out.tmp" ./cmd/pulumi
mv "$out.tmp" "$out"
echo "built $out in $(($(date +%s) - start))s" >&2
echo "$out"
