#!/usr/bin/env bash
# Installs every build, test and run dependency of elafros from Debian's archive.
# Idempotent: packages already present are left alone, so it is safe to run again.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev libfmt-dev libspdlog-dev libyaml-cpp-dev libcli11-dev
  libarchive-dev zlib1g-dev libssl-dev libnghttp2-dev catch2 libhowardhinnant-date-dev tzdata
  libmnl-dev libnftables-dev
  # run
  runc git
  # tests and examples
  umoci skopeo busybox-static curl iproute2 util-linux procps wrk
  python3 openssl apache2-utils systemd python3-kubernetes nghttp2-client python3-grpcio
  # independent receivers for the telemetry sinks: syslog, the journal, OTLP's JSON decoded by
  # protobuf against the OTLP messages (tests/e2e/otlp/*.proto)
  rsyslog systemd-journal-remote python3-protobuf protobuf-compiler
  # the HTTP front end: h11 as the reference parser of what the proxy forwards, and clang's
  # libFuzzer for the request-path fuzz target (tests/fuzz)
  python3-h11 clang libclang-rt-14-dev
  # the data plane's other protocols: WebSocket client and server on both ends of the proxy
  python3-websockets
  # the dashboard's tests: a real browser, headless (driven by puppeteer-core from npm), and
  # hey for the load its charts must show
  chromium hey
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
else
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install: ${missing[*]} (re-run with sudo)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Two test peers come from packages that also install and start a system service (a registry
# on :5000, a Prometheus server on :9090). The tests need only their binaries, so those are
# taken from the packages into /usr/local/bin, and no service is installed.
binary_from_package() {  # PACKAGE PATH-IN-PACKAGE
  local name
  name=$(basename "$2")
  command -v "$name" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install $name (re-run with sudo)" >&2
    exit 1
  fi
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq "$1" 2>/dev/null) ||
    { apt-get update -qq && (cd "$tmp" && apt-get download -qq "$1" 2>/dev/null); }
  dpkg-deb -x "$tmp/$1"_*.deb "$tmp/root"
  install -m 0755 "$tmp/root$2" "/usr/local/bin/$name"
  rm -rf "$tmp"
  echo "install-deps: installed /usr/local/bin/$name from Debian's $1 package (no service)"
}
binary_from_package docker-registry /usr/bin/docker-registry
binary_from_package prometheus /usr/bin/promtool
binary_from_package prometheus /usr/bin/prometheus

# kubectl drives the API in the tests: the machine's, or Debian's kubernetes-client.
if ! command -v kubectl >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install kubernetes-client (re-run with sudo)" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client
fi

# node and npm, for the CloudEvents SDK the event tests run against: the machine's, or Debian's.
for tool in node:nodejs npm:npm; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "install-deps: need root to install ${tool#*:} (re-run with sudo)" >&2
      exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${tool#*:}"
  fi
done
# The official CloudEvents JavaScript SDK, pinned by its lock file, into the test-only folder.
sdk_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e/cloudevents"
if [ ! -d "$sdk_dir/node_modules/cloudevents" ]; then
  (cd "$sdk_dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "install-deps: installed the CloudEvents SDK into $sdk_dir"
fi
# puppeteer-core (no browser download: it drives Debian's chromium), pinned by its lock file.
ui_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e/ui"
if [ ! -d "$ui_dir/node_modules/puppeteer-core" ]; then
  (cd "$ui_dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "install-deps: installed puppeteer-core into $ui_dir"
fi
