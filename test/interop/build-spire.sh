#!/usr/bin/env bash
# Builds SPIRE's server and agent (the reference Workload API server the interop tests run against)
# from the Go module proxy into a cache outside the repository, once. A no-op when both are there.
# The proxy serves the pinned version but no version list, so `go install pkg@version` is refused;
# a throwaway module that requires the version as a tool is the way in.
set -euo pipefail

SPIRE_VERSION=v1.13.3
cache_root="${SVIDKIT_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/svidkit-peers}"
dest="$cache_root/spire-$SPIRE_VERSION/bin"

if [ -x "$dest/spire-server" ] && [ -x "$dest/spire-agent" ]; then
  echo "spire $SPIRE_VERSION: cached in $dest"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "spire $SPIRE_VERSION: go is not on PATH, not built" >&2
  exit 1
fi

mkdir -p "$cache_root"
work="$(mktemp -d "$cache_root/spire-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

start=$(date +%s)
cd "$work"
export GOTOOLCHAIN=local GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=1
go mod init svidkit.invalid/spire-build >/dev/null 2>&1
go get -tool "github.com/spiffe/spire/cmd/spire-server@$SPIRE_VERSION" \
  "github.com/spiffe/spire/cmd/spire-agent@$SPIRE_VERSION"
mkdir -p "$work/bin"
# The sqlite datastore needs cgo (mattn/go-sqlite3); -trimpath keeps the build paths out of the binaries.
go build -trimpath -o "$work/bin/" github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent

# Move into place only when both built, so a half-finished build never looks cached.
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.tmp"
mv "$work/bin" "$dest.tmp"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "spire $SPIRE_VERSION: built into $dest in $(($(date +%s) - start)) s"
