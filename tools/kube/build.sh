#!/usr/bin/env bash
# Build the sandbox control plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kubectl, etcd, kwok) from the Go module proxy into a cache directory keyed by versions.
#
# Idempotent: when the binaries for this go.mod/go.sum/main.go already exist it only prints
# where they are, so CI can call it on every run. A cold build takes several minutes on
# 2 cores (see docs/testing.md); Go's build cache (GOCACHE) makes a rebuild after an edit
# mostly a link.
#
#   tools/kube/build.sh                 build (or reuse) and print the bin directory
#   tools/kube/build.sh --print-bin-dir print where the binaries are/would be; never builds
#   tools/kube/build.sh --check         exit 0 when built, 1 when not; never builds
#
# Env: BERTH_KUBE_CACHE (default ~/.cache/berth/kube).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# Bump when the build flags below change in a way that must invalidate cached binaries.
build_rev=1

mod_version() { awk -v m="$1" '$1 == m && $2 ~ /^v/ {print $2; exit}' go.mod; }
k8s_version="$(mod_version k8s.io/kubernetes)"
etcd_version="$(mod_version go.etcd.io/etcd/server/v3)"
kwok_version="$(mod_version sigs.k8s.io/kwok)"
inputs_hash="$( (echo "$build_rev"; cat go.mod go.sum main.go) | sha256sum | cut -c1-10)"
key="k8s-${k8s_version}_etcd-${etcd_version}_kwok-${kwok_version}_${inputs_hash}"
cache="${BERTH_KUBE_CACHE:-$HOME/.cache/berth/kube}"
bin_dir="$cache/$key/bin"
components=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kubelet)

is_built() {
    [[ -x "$bin_dir/kube" ]] || return 1
    local c
    for c in "${components[@]}"; do [[ -L "$bin_dir/$c" ]] || return 1; done
}

case "${1:-}" in
    --print-bin-dir) echo "$bin_dir"; exit 0 ;;
    --check) is_built; exit $? ;;
    "") ;;
    *) echo "usage: $0 [--print-bin-dir|--check]" >&2; exit 2 ;;
esac

if is_built; then
    echo "kube binaries up to date: $bin_dir" >&2
    echo "$bin_dir"
    exit 0
fi

command -v go >/dev/null || { echo "error: go is not on PATH (need go >= 1.26)" >&2; exit 1; }

# /version must report the real release: the same variables hack/lib/version.sh sets.
minor="${k8s_version#v1.}"; minor="${minor%%.*}"
info="$(go mod download -json "k8s.io/kubernetes@${k8s_version}" | sed -n 's/.*"Info": *"\([^"]*\)".*/\1/p')"
build_date="$(sed -n 's/.*"Time": *"\([^"]*\)".*/\1/p' "$info" 2>/dev/null || true)"
[[ -n "$build_date" ]] || build_date="1970-01-01T00:00:00Z"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=${k8s_version} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor}"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=${build_date}"
    ldflags+=" -X $pkg.gitCommit=release-${k8s_version}"
done
ldflags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=release-${etcd_version}"

echo "building kube ${k8s_version}, etcd ${etcd_version}, kwok ${kwok_version} -> $bin_dir" >&2
echo "  (cold: several minutes on 2 cores)" >&2
tmp="$cache/$key/bin.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
echo "  downloading modules..." >&2
go mod download
echo "  compiling and linking (go build -trimpath)..." >&2
# -v names each package as it compiles: count them for progress, pass errors through.
CGO_ENABLED=0 GOFLAGS="-trimpath ${GOFLAGS:-}" go build -v -ldflags "$ldflags" -o "$tmp/kube" . 2>&1 \
    | awk '/[ :]/ {print "  go: " $0; next} {n++; if (n % 250 == 0) printf "  %d packages compiled (%d s)\n", n, systime() - t0; fflush()}' \
        t0="$(date +%s)" >&2
for c in "${components[@]}"; do ln -sf kube "$tmp/$c"; done
"$tmp/kube" kubectl version --client >/dev/null
rm -rf "$bin_dir"
mv "$tmp" "$bin_dir"
trap - EXIT
echo "built in $((SECONDS - start)) s: $bin_dir" >&2
echo "$bin_dir"
