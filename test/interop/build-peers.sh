#!/usr/bin/env bash
# Installs the SPIFFE peers of the Workload API interop tests (docs/interop.md) into a cache outside
# the repository, each once: SPIRE's server and agent (build-spire.sh), the modules of the go-spiffe
# client (test/interop/gospiffe, built by the test itself from them, offline) and a Python venv with
# py-spiffe pinned by test/interop/pyspiffe/requirements.txt. Safe to run again: what is there stays.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache_root="${SVIDKIT_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/svidkit-peers}"
mkdir -p "$cache_root"

bash "$here/build-spire.sh"

# go-spiffe: fetch exactly the modules go.sum names, then build once so the test's own offline build
# (GOPROXY=off) only links.
start=$(date +%s)
(cd "$here/gospiffe" && GOTOOLCHAIN=local GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" go mod download &&
  GOTOOLCHAIN=local GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 \
    go build -trimpath -o "$cache_root/gospiffe/gospiffe" . &&
  cat main.go go.mod go.sum | sha256sum | cut -d' ' -f1 >"$cache_root/gospiffe/source.sha256")
echo "go-spiffe client: built into $cache_root/gospiffe in $(($(date +%s) - start)) s"

# py-spiffe: a venv per pinned version; rebuilt only when it cannot import the package.
py_version="$(sed -n 's/^spiffe==//p' "$here/pyspiffe/requirements.txt")"
venv="$cache_root/pyspiffe-$py_version/venv"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import spiffe' >/dev/null 2>&1; then
  echo "py-spiffe $py_version: cached in $venv"
else
  py=""
  for candidate in $(type -ap python3); do
    if "$candidate" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 9) else 1)' >/dev/null 2>&1; then
      py="$candidate"
      break
    fi
  done
  if [ -z "$py" ]; then
    echo "py-spiffe: no python3 >= 3.9 with venv on PATH" >&2
    exit 1
  fi
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$here/pyspiffe/requirements.txt"
  echo "py-spiffe $py_version: installed into $venv"
fi
