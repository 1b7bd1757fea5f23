#!/usr/bin/env bash
# Installs what bagpipe needs to build, test and run its demo on Debian 12:
# the Go toolchain (if absent), route reflectors used by the tests (gobgpd,
# FRR), network tools, the Python reference (for side-by-side checks),
# Chromium and Graphviz (web view and import/export graph tests), and the Go
# modules.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# chromium (headless) tests the web view, graphviz renders bagpipe-impex2dot
# graphs.
for pkg in gobgpd frr iproute2 iputils-ping tcpdump ethtool openvswitch-switch python3-networking-bagpipe \
  chromium fonts-dejavu-core graphviz; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  need+=(golang-go)
fi
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# FRR and Open vSwitch come with services we do not use: the tests start
# their own daemons inside network namespaces.
for svc in frr openvswitch-switch; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done

export PATH="/usr/local/go/bin:$PATH"
# Debian's Go is older than go.mod asks: let it fetch the right toolchain.
export GOTOOLCHAIN=auto
go mod download
