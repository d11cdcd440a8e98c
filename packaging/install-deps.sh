#!/usr/bin/env bash
# Installs every build, test and run dependency of elafros from Debian's archive.
# Idempotent: packages already present are left alone, so it is safe to run again.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev libfmt-dev libspdlog-dev libyaml-cpp-dev libcli11-dev
  libarchive-dev libssl-dev catch2
  # run
  runc
  # tests and examples
  umoci skopeo docker-registry busybox-static curl iproute2 util-linux procps wrk
  python3 openssl apache2-utils prometheus
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]} (re-run with sudo)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
