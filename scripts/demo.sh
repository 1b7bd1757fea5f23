#!/usr/bin/env bash
# Self-contained demo: a gobgpd route reflector (with RT Constraint) and two
# compute nodes running bagpipe-bgp, each in its own network namespace. A VM
# port is attached on each node to the same E-VPN and the same IP VPN with
# bagpipe-rest-attach; the looking glass of each node then shows the routes
# learned from the other. Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
export PATH="/usr/local/go/bin:$PATH" GOTOOLCHAIN=auto

work=$(mktemp -d /tmp/bagpipe-demo.XXXXXX)
pfx="bpdemo$$"
go build -o "$work/bin/" ./cmd/...
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in fab rr n1 n2; do ip netns del "$pfx-$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

in_ns() { local ns=$1; shift; ip netns exec "$pfx-$ns" "$@"; }

echo "== fabric: namespaces $pfx-{rr,n1,n2} on a bridge, 10.251.0.0/24"
ip netns add "$pfx-fab"
in_ns fab ip link add br0 type bridge
in_ns fab ip link set br0 up
i=1
for ns in rr n1 n2; do
  ip netns add "$pfx-$ns"
  in_ns "$ns" ip link set lo up
  ip link add "$pfx-$ns" type veth peer name eth0 netns "$pfx-$ns"
  ip link set "$pfx-$ns" netns "$pfx-fab"
  in_ns fab ip link set "$pfx-$ns" master br0 up
  in_ns "$ns" ip addr add "10.251.0.$i/24" dev eth0
  in_ns "$ns" ip link set eth0 up
  i=$((i + 1))
done

echo "== route reflector: gobgpd on 10.251.0.1 (RTC on)"
cat > "$work/gobgpd.toml" <<TOML
[global.config]
  as = 64512
  router-id = "10.251.0.1"
  local-address-list = ["10.251.0.1"]
TOML
for c in 10.251.0.2 10.251.0.3; do
  cat >> "$work/gobgpd.toml" <<TOML
[[neighbors]]
  [neighbors.config]
    neighbor-address = "$c"
    peer-as = 64512
  [neighbors.transport.config]
    passive-mode = true
  [neighbors.route-reflector.config]
    route-reflector-client = true
    route-reflector-cluster-id = "10.251.0.1"
TOML
  for fam in l3vpn-ipv4-unicast l2vpn-evpn l3vpn-ipv4-flowspec rtc; do
    printf '  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = "%s"\n' "$fam" >> "$work/gobgpd.toml"
  done
done
in_ns rr gobgpd -f "$work/gobgpd.toml" -t toml --api-hosts 10.251.0.1:50051 --pprof-disable >"$work/gobgpd.log" 2>&1 &
pids+=($!)

for n in 1 2; do
  cat > "$work/bgp$n.conf" <<CONF
[BGP]
local_address = 10.251.0.$((n + 1))
peers = 10.251.0.1
my_as = 64512
enable_rtc = True

[API]
host = 127.0.0.1
port = 8082

[DATAPLANE_DRIVER_IPVPN]
dataplane_driver = dummy

[DATAPLANE_DRIVER_EVPN]
dataplane_driver = dummy
CONF
  echo "== node n$n: bagpipe-bgp on 10.251.0.$((n + 1))"
  in_ns "n$n" "$work/bin/bagpipe-bgp" --config-file "$work/bgp$n.conf" >"$work/n$n.log" 2>&1 &
  pids+=($!)
done

lg() { local n=$1; shift; in_ns "n$n" "$work/bin/bagpipe-looking-glass" --port 8082 "$@"; }

for n in 1 2; do
  for _ in $(seq 100); do
    lg "$n" summary BGP_established_peers 2>/dev/null | grep -q '^1$' && break
    sleep 0.2
  done
  echo "== node n$n: BGP session to the route reflector: $(lg "$n" bgp peers | tr -s ' \n' ' ')"
done

for n in 1 2; do
  echo "== node n$n: attach a VM port to E-VPN 'net1' and IP VPN 'net2'"
  in_ns "n$n" "$work/bin/bagpipe-rest-attach" --config-file "$work/bgp$n.conf" --attach \
    --network-type evpn --vpn-instance-id net1 --port "tap$n" --mac "52:54:00:00:00:0$n" --ip "10.0.0.$n" --rt 64512:100
  in_ns "n$n" "$work/bin/bagpipe-rest-attach" --config-file "$work/bgp$n.conf" --attach \
    --network-type ipvpn --vpn-instance-id net2 --port "tapv$n" --mac "52:54:00:00:01:0$n" --ip "10.1.0.$n" --rt 64512:200
done
sleep 1

for n in 1 2; do
  echo
  echo "================ looking glass of node n$n ================"
  lg "$n" summary
  echo "---- E-VPN instance: routes received and what the dataplane holds"
  lg "$n" vpns instances net1 best_routes
  lg "$n" vpns instances net1 dataplane
  echo "---- IP VPN instance"
  lg "$n" vpns instances net2 best_routes
  lg "$n" vpns instances net2 dataplane
done
echo
echo "Demo done: each node learned the other's E-VPN and IP VPN routes through the route reflector."
