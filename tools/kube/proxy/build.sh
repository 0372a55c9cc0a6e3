#!/usr/bin/env bash
# Build kube-proxy (k8s.io/kubernetes/cmd/kube-proxy) for `berth sandbox up --kubelet N --kube-proxy`,
# at the same Kubernetes version as the control plane, into its own cache directory.
#
# Its own binary and cache key, not a personality of the multi-call `kube` binary: adding it there
# would change that build's inputs and cost a cold control-plane rebuild (~17 min on 2 cores);
# built alone it is about 25 s with a warm Go build cache. It uses ../go.mod and ../go.sum (the
# control plane's pins) plus go.sum.extra: the checksums of the modules only kube-proxy needs
# (netlink, knftables, ipvs), so the build stays verified and offline-reproducible.
#
#   tools/kube/proxy/build.sh                 build (or reuse) and print the bin directory
#   tools/kube/proxy/build.sh --print-bin-dir print where the binary is/would be; never builds
#   tools/kube/proxy/build.sh --check         exit 0 when built, 1 when not; never builds
#
# Env: BERTH_KUBE_CACHE (default ~/.cache/berth/kube), the same root as the control plane's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/.."

build_rev=1
k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$mod/go.mod")"
inputs_hash="$( (echo "$build_rev"; cat "$mod/go.mod" "$mod/go.sum" "$here/go.sum.extra" "$here/build.sh") | sha256sum | cut -c1-10)"
cache="${BERTH_KUBE_CACHE:-$HOME/.cache/berth/kube}"
bin_dir="$cache/kube-proxy-${k8s_version}_${inputs_hash}/bin"

case "${1:-}" in
    --print-bin-dir) echo "$bin_dir"; exit 0 ;;
    --check) [[ -x "$bin_dir/kube-proxy" ]]; exit $? ;;
    "") ;;
    *) echo "usage: $0 [--print-bin-dir|--check]" >&2; exit 2 ;;
esac

if [[ -x "$bin_dir/kube-proxy" ]]; then
    echo "kube-proxy up to date: $bin_dir" >&2
    echo "$bin_dir"
    exit 0
fi

command -v go >/dev/null || { echo "error: go is not on PATH (need go >= 1.26)" >&2; exit 1; }

work="$(mktemp -d)"
tmp="$(dirname "$bin_dir")/bin.tmp.$$"
trap 'rm -rf "$work" "$tmp"' EXIT
cp "$mod/go.mod" "$work/go.mod"
cat "$mod/go.sum" "$here/go.sum.extra" > "$work/go.sum"
minor="${k8s_version#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=${k8s_version} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor}"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=release-${k8s_version}"
done
echo "building kube-proxy ${k8s_version} -> $bin_dir (about 25 s with a warm Go build cache)" >&2
start=$SECONDS
mkdir -p "$tmp"
(cd "$work" && CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly ${GOFLAGS:-}" \
    go build -ldflags "$ldflags" -o "$tmp/kube-proxy" k8s.io/kubernetes/cmd/kube-proxy)
"$tmp/kube-proxy" --version >/dev/null
rm -rf "$bin_dir"
mv "$tmp" "$bin_dir"
echo "built in $((SECONDS - start)) s: $bin_dir" >&2
echo "$bin_dir"
