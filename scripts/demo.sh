#!/usr/bin/env bash
# Self-contained demo: a gobgpd route reflector (with RT Constraint) and two
# compute nodes running bagpipe-bgp with the linux E-VPN dataplane (Linux
# bridge + VXLAN), each in its own network namespace. On each node,
# bagpipe-rest-attach --port netns creates a "VM" (a namespace with a veth)
# and attaches it to the same E-VPN; the VMs ping each other through the
# VXLAN tunnel, and the looking glass of each node shows the routes learned
# from the other node and what its dataplane holds. Everything is removed
# at the end, even on failure or Ctrl-C.
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
  for ns in vm1 vm2 n1 n2 rr fab; do ip netns del "$pfx-$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Commands run in a node with nsenter, which only switches the network
# namespace: the VM namespaces bagpipe-rest-attach creates from there must
# be visible to the whole system ("ip netns exec" would give them a private
# mount namespace that dies with the command).
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$pfx-$ns" "$@"; }

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
dataplane_driver = linux
vxlan_dst_port = 4789
CONF
  echo "== node n$n: bagpipe-bgp on 10.251.0.$((n + 1)), E-VPN dataplane: linux (bridge + VXLAN)"
  in_ns "n$n" "$work/bin/bagpipe-bgp" --config-file "$work/bgp$n.conf" >"$work/n$n.log" 2>&1 &
  pids+=($!)
done

lg() { local n=$1; shift; in_ns "n$n" "$work/bin/bagpipe-looking-glass" --port 8082 "$@"; }

for n in 1 2; do
  up=0
  for _ in $(seq 100); do
    if [ "$(lg "$n" summary BGP_established_peers 2>/dev/null)" = 1 ]; then up=1; break; fi
    sleep 0.2
  done
  if [ "$up" != 1 ]; then
    echo "node n$n did not establish its BGP session; its log:"; cat "$work/n$n.log"; exit 1
  fi
  echo "== node n$n: BGP session to the route reflector: $(lg "$n" bgp peers | tr -s ' \n' ' ')"
done

for n in 1 2; do
  echo "== node n$n: create VM $pfx-vm$n (10.0.0.$n) and attach it to E-VPN 'demo' (bagpipe-rest-attach --port netns)"
  in_ns "n$n" "$work/bin/bagpipe-rest-attach" --config-file "$work/bgp$n.conf" --attach \
    --network-type evpn --vpn-instance-id demo --rt 64512:100 \
    --port "netns:tap-vm$n" --netns "$pfx-vm$n" --ip "10.0.0.$n/24"
done

echo
echo "== ping from VM 1 (node n1) to VM 2 (node n2), through VXLAN"
ok=0
for _ in $(seq 20); do
  if ip netns exec "$pfx-vm1" ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.2
done
ip netns exec "$pfx-vm1" ping -c 3 -i 0.3 10.0.0.2 || ok=0

for n in 1 2; do
  echo
  echo "================ looking glass of node n$n ================"
  lg "$n" summary
  echo "---- E-VPN instance 'demo': best routes (learned from the other node)"
  lg "$n" vpns instances demo best_routes
  echo "---- E-VPN instance 'demo': dataplane (bridge, VXLAN device, FDB and ARP entries installed)"
  lg "$n" vpns instances demo dataplane
done
echo
if [ "$ok" = 1 ]; then
  echo "Demo done: the two VMs, on two nodes, pinged each other through the E-VPN."
else
  echo "Demo FAILED: no ping answer. Logs: n1, n2:"; cat "$work/n1.log" "$work/n2.log"; exit 1
fi
