#!/usr/bin/env bash
# Build CoreDNS (the cluster DNS of `berth sandbox up --kubelet`) from the Go module proxy into a
# cache directory keyed by its version and this directory's inputs, like tools/kube/build.sh.
#
# Idempotent: when the binary for this go.mod/go.sum/main.go exists it only prints where it is.
#
#   tools/coredns/build.sh                 build (or reuse) and print the bin directory
#   tools/coredns/build.sh --print-bin-dir print where the binary is/would be; never builds
#   tools/coredns/build.sh --check         exit 0 when built, 1 when not; never builds
#
# Env: BERTH_COREDNS_CACHE (default ~/.cache/berth/coredns).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

build_rev=1
version="$(awk '$1 == "github.com/coredns/coredns" && $2 ~ /^v/ {print $2; exit}' go.mod)"
[[ -n "$version" ]] || version="$(awk '$1 == "require" && $2 == "github.com/coredns/coredns" {print $3; exit}' go.mod)"
inputs_hash="$( (echo "$build_rev"; cat go.mod go.sum main.go) | sha256sum | cut -c1-10)"
cache="${BERTH_COREDNS_CACHE:-$HOME/.cache/berth/coredns}"
bin_dir="$cache/coredns-${version}_${inputs_hash}/bin"

case "${1:-}" in
    --print-bin-dir) echo "$bin_dir"; exit 0 ;;
    --check) [[ -x "$bin_dir/coredns" ]]; exit $? ;;
    "") ;;
    *) echo "usage: $0 [--print-bin-dir|--check]" >&2; exit 2 ;;
esac

if [[ -x "$bin_dir/coredns" ]]; then
    echo "coredns up to date: $bin_dir" >&2
    echo "$bin_dir"
    exit 0
fi
command -v go >/dev/null || { echo "error: go is not on PATH (need go >= 1.26)" >&2; exit 1; }

echo "building coredns ${version} -> $bin_dir" >&2
tmp="$cache/coredns-${version}_${inputs_hash}/bin.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
go mod download
CGO_ENABLED=0 GOFLAGS="-trimpath ${GOFLAGS:-}" go build -ldflags "-s -w" -o "$tmp/coredns" .
"$tmp/coredns" -version >/dev/null
rm -rf "$bin_dir"
mv "$tmp" "$bin_dir"
trap - EXIT
echo "built in $((SECONDS - start)) s: $bin_dir" >&2
echo "$bin_dir"
