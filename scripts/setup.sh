#!/usr/bin/env bash
# Install conv-vs-dense and the data it reads without downloading.
#   bash scripts/setup.sh        # the package (and the cvd command)
#   bash scripts/setup.sh dev    # plus the test tools
# As root, also installs Debian's dataset-fashion-mnist when it is missing
# (elsewhere, Fashion-MNIST runs are skipped with a message saying how to get it).
set -euo pipefail
cd "$(dirname "$0")/.."
extra=""
[ "${1:-}" = "dev" ] && extra="[dev]"
python3 -m pip install --quiet --disable-pip-version-check -e ".${extra}"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "installing Debian's dataset-fashion-mnist ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
    || echo "warning: could not install dataset-fashion-mnist; Fashion-MNIST runs will be skipped" >&2
fi
command -v pyenv >/dev/null && pyenv rehash || true
