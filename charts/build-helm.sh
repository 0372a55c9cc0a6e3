#!/usr/bin/env bash
# Build helm from its Go module (helm.sh/helm/v3/cmd/helm) into a cache outside the repository,
# keyed by version, for tests/test_operator_chart.py (`helm lint` + `helm template` of the chart).
# Checksums come from the Go checksum database (`go get`), so the build is verified.
#
#   charts/build-helm.sh                 build (or reuse) and print the binary's path
#   charts/build-helm.sh --print         print where the binary is/would be; never builds
#   charts/build-helm.sh --check         exit 0 when built, 1 when not; never builds
#
# Env: BERTH_HELM_VERSION (default below), BERTH_HELM_CACHE (default ~/.cache/berth/helm).
set -euo pipefail

version="${BERTH_HELM_VERSION:-v3.22.0}"
cache="${BERTH_HELM_CACHE:-$HOME/.cache/berth/helm}"
bin="$cache/$version/helm"

case "${1:-}" in
    --print) echo "$bin"; exit 0 ;;
    --check) [[ -x "$bin" ]]; exit $? ;;
    "") ;;
    *) echo "usage: $0 [--print|--check]" >&2; exit 2 ;;
esac

if [[ -x "$bin" ]]; then
    echo "$bin"
    exit 0
fi
command -v go >/dev/null || { echo "error: go is not on PATH" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "building helm $version -> $bin" >&2
start=$SECONDS
(
    cd "$work"
    go mod init berth-helm-build >/dev/null 2>&1
    go get "helm.sh/helm/v3/cmd/helm@$version" >&2
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
        -o "$work/helm" helm.sh/helm/v3/cmd/helm
)
"$work/helm" version --short >/dev/null
mkdir -p "$(dirname "$bin")"
mv "$work/helm" "$bin.tmp.$$" && mv "$bin.tmp.$$" "$bin"
echo "built helm $version in $((SECONDS - start)) s" >&2
echo "$bin"
