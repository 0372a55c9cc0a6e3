#!/usr/bin/env bash
# Build Velero's server/CLI (github.com/vmware-tanzu/velero/cmd/velero) and its AWS object-store
# plugin (github.com/vmware-tanzu/velero-plugin-for-aws) from their Go modules into a cache outside
# the repository, keyed by both versions, for tests/cluster/test_velero_server.py (a real
# `velero server` against the sandbox's API server and a SeaweedFS bucket). Also writes Velero's own
# CRDs (`velero install --crds-only --dry-run -o yaml`) next to the binaries.
#
# Both are built from the wrapper module here (go.mod: tool directives, Velero's kopia replace, one
# patch bump where the module proxy lacks Velero's exact k8s.io/cli-runtime), checksums from go.sum.
# The plugin's go.mod names the Velero it was built against (its plugin framework); the pair in
# go.mod matches (velero-plugin-for-aws v1.14.x requires velero v1.18.x) and the script checks it.
#
# Idempotent: when both binaries exist it only prints where they are, so CI can call it every run.
#
#   tools/velero/build.sh                 build (or reuse) and print the bin directory
#   tools/velero/build.sh --print-bin-dir print where the binaries are/would be; never builds
#   tools/velero/build.sh --check         exit 0 when built, 1 when not; never builds
#
# Bin directory: velero, plugins/velero-plugin-for-aws (the directory for `velero server
# --plugin-dir`), crds.yaml.
# Env: BERTH_VELERO_CACHE (default ~/.cache/berth/velero).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# Bump when the build flags below change in a way that must invalidate cached binaries.
build_rev=1
mod_version() { awk -v m="$1" '$1 == m && $2 ~ /^v/ {print $2; exit}' go.mod; }
velero_version="$(mod_version github.com/vmware-tanzu/velero)"
aws_version="$(mod_version github.com/vmware-tanzu/velero-plugin-for-aws)"
inputs_hash="$( (echo "$build_rev"; cat go.mod go.sum) | sha256sum | cut -c1-10)"
key="velero-${velero_version}_aws-${aws_version}_${inputs_hash}"
cache="${BERTH_VELERO_CACHE:-$HOME/.cache/berth/velero}"
bin_dir="$cache/$key/bin"

is_built() {
    [[ -x "$bin_dir/velero" && -x "$bin_dir/plugins/velero-plugin-for-aws" && -s "$bin_dir/crds.yaml" ]]
}

case "${1:-}" in
    --print-bin-dir) echo "$bin_dir"; exit 0 ;;
    --check) is_built; exit $? ;;
    "") ;;
    *) echo "usage: $0 [--print-bin-dir|--check]" >&2; exit 2 ;;
esac

if is_built; then
    echo "velero up to date: $bin_dir" >&2
    echo "$bin_dir"
    exit 0
fi
command -v go >/dev/null || { echo "error: go is not on PATH (need go >= 1.26)" >&2; exit 1; }

echo "building velero ${velero_version} + velero-plugin-for-aws ${aws_version} -> $bin_dir" >&2
echo "  (cold: several minutes on 2 cores)" >&2
tmp="$cache/$key/bin.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/plugins"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
echo "  downloading modules..." >&2
go mod download

# The plugin must be built against the same plugin API (Velero minor version) as the server.
aws_mod="$(go mod download -json "github.com/vmware-tanzu/velero-plugin-for-aws@${aws_version}" \
    | sed -n 's/.*"GoMod": *"\([^"]*\)".*/\1/p')"
aws_wants="$(awk '$1 == "github.com/vmware-tanzu/velero" && $2 ~ /^v/ {print $2; exit}' "$aws_mod")"
if [[ "${aws_wants%.*}" != "${velero_version%.*}" ]]; then
    echo "error: velero-plugin-for-aws ${aws_version} is built against velero ${aws_wants}," \
        "not ${velero_version%.*}.x: pick the matching pair (see Velero's compatibility table)" >&2
    exit 1
fi

# Velero's Makefile sets these; `velero version` and the server's log print them.
ldflags="-s -w -X github.com/vmware-tanzu/velero/pkg/buildinfo.Version=${velero_version}"
ldflags+=" -X github.com/vmware-tanzu/velero/pkg/buildinfo.GitSHA=release-${velero_version}"
ldflags+=" -X github.com/vmware-tanzu/velero/pkg/buildinfo.GitTreeState=clean"

build() {  # build PKG OUT
    local t0=$SECONDS
    echo "  compiling $1 (go build -trimpath)..." >&2
    CGO_ENABLED=0 GOFLAGS="-trimpath ${GOFLAGS:-}" nice go build -ldflags "$ldflags" -o "$2" "$1"
    echo "  $1: $((SECONDS - t0)) s" >&2
}
build github.com/vmware-tanzu/velero/cmd/velero "$tmp/velero"
build github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws "$tmp/plugins/velero-plugin-for-aws"

"$tmp/velero" version --client-only >/dev/null
# Velero's CRDs as its installer writes them (generated from its Go types, config/crd/v1).
"$tmp/velero" install --crds-only --dry-run -o yaml >"$tmp/crds.yaml"
grep -q "name: backups.velero.io" "$tmp/crds.yaml"

rm -rf "$bin_dir"
mv "$tmp" "$bin_dir"
trap - EXIT
echo "built in $((SECONDS - start)) s: $bin_dir" >&2
echo "$bin_dir"
