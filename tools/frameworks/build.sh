#!/usr/bin/env bash
# A virtual environment with TensorFlow (CPU) for tests/frameworks/test_tensorflow.py, cached outside the
# repository keyed by TensorFlow's version and this machine's Python, like tools/kube/build.sh.
#
# Why a venv of its own and not `pip install -e '.[frameworks-tf]'` into CI's .venv: CI makes .venv
# anew on every run, and pip here keeps no wheel cache, so TensorFlow (about 1.3 GB with its deps,
# about a minute to download) would be fetched every time. The test runs TensorFlow's own code in
# separate processes, so an interpreter of its own is all it needs ($BERTH_TF_PYTHON).
# torch is not built here: PyPI's wheel needs about 4 GB of CUDA libraries even on CPU (docs/testing.md).
#
# Idempotent: when the venv for this version exists it only prints its interpreter.
#
#   tools/frameworks/build.sh                  create (or reuse) and print the interpreter's path
#   tools/frameworks/build.sh --print-python   print where the interpreter is/would be; never builds
#
# Env: BERTH_FRAMEWORKS_CACHE (default ~/.cache/berth/frameworks).
set -euo pipefail

tf_version=2.21.0
py="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
cache="${BERTH_FRAMEWORKS_CACHE:-$HOME/.cache/berth/frameworks}"
venv="$cache/tensorflow-cpu-${tf_version}-py${py}"
python="$venv/bin/python"

case "${1:-}" in
    --print-python) echo "$python"; exit 0 ;;
    "") ;;
    *) echo "usage: $0 [--print-python]" >&2; exit 2 ;;
esac

if [[ -f "$venv/.complete" ]]; then
    echo "tensorflow-cpu ${tf_version} up to date: $venv" >&2
    echo "$python"
    exit 0
fi

echo "installing tensorflow-cpu ${tf_version} -> $venv" >&2
started=$(date +%s)
# A venv is not relocatable (its scripts name its path): build it in place; .complete marks it done,
# so a killed install is redone from scratch.
rm -rf "$venv"
mkdir -p "$cache"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "tensorflow-cpu==${tf_version}"
TF_CPP_MIN_LOG_LEVEL=3 "$python" -c 'import tensorflow as tf; print("tensorflow", tf.__version__)' >&2
touch "$venv/.complete"
echo "tensorflow-cpu ${tf_version} ready in $(( $(date +%s) - started ))s" >&2
echo "$python"
