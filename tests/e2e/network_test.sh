#!/usr/bin/env bash
# End-to-end for per-instance networks (docs/architecture.md, "Isolation"), against a real
# elafrosd and runc, every check inside namespaces this test or the daemon made: an app that
# listens on its declared containerPort serves, with PORT equal to it; from inside an instance,
# another instance, the API and metrics ports are unreachable, the proxy's brokers' ingress is
# reachable and services are refused; egress to a namespace playing "the internet" works through
# NAT; a raw socket sees only its own instance's traffic; kill -9 and restarts adopt the
# namespaces and leak none; a stop removes the bridge and its rules.
#   tests/e2e/network_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

inet=elti$(($$ % 100000))  # the namespace playing the internet, and its veth
inet_net=192.168.$((100 + $$ % 100))
cleanup_inet() { ip netns delete "$inet" 2>/dev/null || true; ip link delete "$inet" 2>/dev/null || true; }
trap 'cleanup_inet; cleanup' EXIT

"$src/tests/e2e/apps/build-rawecho.sh" "$work/image" >/dev/null
img="oci:$work/image:latest"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port); metrics_port=$(free_port)
# On every address, so that only the daemon's rules keep instances from them.
daemon_args=(--network bridge --api-listen "0.0.0.0:$api_port" --metrics-listen "0.0.0.0:$metrics_port")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
gateway=${net_subnet%.0/24}.1
runc_exec() { runc --root "$data/runc" exec "$@"; }
instance() { e instance list -o json | /usr/bin/python3 -c "import json,sys; i=[x for x in json.load(sys.stdin)['items'] if x['service']=='$1' and x['phase']=='ready'][0]; print(i['id'], i['pid'], i.get('address',''))"; }
netns_count() { find /run/elafros/"$net_bridge"/netns -type f 2>/dev/null | wc -l; }

bridge_mac() { cat "/sys/class/net/$net_bridge/address"; }
mac_at_start=$(bridge_mac)
e service create a --image "$img" >/dev/null
check "PORT is the container port, 8080 by default" test "$(curl -sS "http://a.default.localhost:$port/env")" = "PORT=8080"
e apply -f - >/dev/null <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: declared}
spec:
  template:
    spec:
      containers:
        - image: $img
          command: [/bin/rawecho, "9000"]
          ports: [{containerPort: 9000}]
YAML
check "an app that ignores PORT and listens on its declared containerPort 9000 serves" \
  test "$(curl -sS "http://declared.default.localhost:$port/env")" = "PORT=9000"
e service create fixed --image "$img" --cmd /bin/rawecho --arg 8080 >/dev/null
check "an app listening on 0.0.0.0:8080 whatever PORT says serves" contains "$(curl -sS "http://fixed.default.localhost:$port/env")" "PORT=8080"

read -r a_id a_pid a_ip <<<"$(instance a)"
read -r b_id b_pid b_ip <<<"$(instance declared)"
check "instances have addresses on the bridge's subnet" contains "$a_ip" "${net_subnet%.0/24}."
out=$(runc_exec "$a_id" sh -c "nc -w 2 $b_ip 9000 </dev/null && echo connected || echo refused" 2>&1)
check "instance -> another instance's IP:PORT fails" contains "$out" "refused"
check "...although that instance serves through the proxy" test "$(curl -sS "http://declared.default.localhost:$port/env")" = "PORT=9000"
check "the host reaches the API on the gateway address (so only the rules stop instances)" \
  bash -c "exec 3<>/dev/tcp/$gateway/$api_port"
out=$(runc_exec "$a_id" sh -c "nc -w 2 $gateway $api_port </dev/null && echo connected || echo refused" 2>&1)
check "instance -> the host's API port fails" contains "$out" "refused"
out=$(runc_exec "$a_id" sh -c "nc -w 2 $gateway $metrics_port </dev/null && echo connected || echo refused" 2>&1)
check "instance -> the host's metrics port fails" contains "$out" "refused"
out=$(runc_exec "$a_id" sh -c "nc -w 2 127.0.0.1 $port </dev/null && echo connected || echo refused" 2>&1)
check "instance -> 127.0.0.1 is its own loopback, not the host's" contains "$out" "refused"
# request_from_a HOST PATH: the status line the proxy answers at the gateway.
request_from_a() {
  runc_exec "$a_id" sh -c "printf 'POST $2 HTTP/1.1\r\nHost: $1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' | nc -w 3 $gateway $port | head -1" 2>&1 || true
}
out=$(request_from_a broker-ingress.localhost /default/nosuch)
check "instance -> the proxy's brokers' ingress at the gateway is reachable ($out)" contains "$out" "HTTP/1.1 404"
out=$(request_from_a declared.default.localhost /env)
check "instance -> a service through the proxy is refused by default ($out)" contains "$out" "HTTP/1.1 403"

# Egress: a namespace made here plays the internet.
ip netns add "$inet"
ip link add "$inet" type veth peer name eth0 netns "$inet"
ip addr add "$inet_net.1/30" dev "$inet"
ip link set "$inet" up
ip -n "$inet" addr add "$inet_net.2/30" dev eth0
ip -n "$inet" link set eth0 up
ip -n "$inet" link set lo up
ip netns exec "$inet" busybox sh -c "echo internet | busybox nc -l -p 7000 -w 5" >"$work/inet.out" 2>&1 &
extra_pids+=($!)
out=$(runc_exec "$a_id" sh -c "nc -w 3 $inet_net.2 7000 </dev/null" 2>&1 || true)
check "instance -> an address outside (a test namespace) works through NAT" test "$out" = internet

# Raw sockets: root with CAP_NET_RAW sees its own namespace's traffic only.
e apply -f - >/dev/null <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: sniffer}
spec:
  template:
    spec:
      containers: [{image: "$img", securityContext: {runAsUser: 0}}]
YAML
read -r s_id _ _ <<<"$(instance sniffer)"
runc_exec "$s_id" /bin/rawecho sniff 3 elafros-marker-b >"$work/sniff-b" &
sniff=$!
wait_until 5 grep -q sniffing "$work/sniff-b"
for _ in 1 2 3 4 5; do curl -sS -o /dev/null "http://declared.default.localhost:$port/elafros-marker-b"; done
wait "$sniff"
check "a raw socket in one instance sees none of another's traffic" grep -qx "seen=0" "$work/sniff-b"
runc_exec "$s_id" /bin/rawecho sniff 3 elafros-marker-s >"$work/sniff-s" &
sniff=$!
wait_until 5 grep -q sniffing "$work/sniff-s"
for _ in 1 2 3 4 5; do curl -sS -o /dev/null "http://sniffer.default.localhost:$port/elafros-marker-s"; done
wait "$sniff"
check "...while it sees its own (the check can fail)" grep -vqx "seen=0" "$work/sniff-s"

# kill -9 and restart: instances and their namespaces adopted, nothing leaked.
before=$(netns_count)
for round in 1 2 3 4 5; do
  kill -KILL "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
  start_daemon
done
check "after 5 kill -9 rounds the instances are adopted (same pid)" test "$(instance a | cut -d' ' -f2)" = "$a_pid"
check "...and serve" test "$(curl -sS "http://a.default.localhost:$port/env")" = "PORT=8080"
check "...with no namespace leaked ($before before, $(netns_count) after)" test "$(netns_count)" -le "$before"
# The proxy's kept-alive connection to an instance is tracked by the host; a deleted instance's
# namespace sends no reset, so its entries would stay for days unless forgotten.
tracked() { grep -c " dst=$1 " /proc/net/nf_conntrack || true; }
a_ip=$(instance a | cut -d' ' -f3)
curl -sS -o /dev/null "http://a.default.localhost:$port/env"
check "the connection tracking table holds the proxy's connection to instance a" test "$(tracked "$a_ip")" -ge 1
for s in a declared fixed sniffer; do e service delete "$s" >/dev/null; done
no_instances() { test "$(e instance list -o json | grep -c '"id"')" = 0; }
wait_until 20 no_instances
check "...and none once it is deleted (a reused address starts clean)" test "$(tracked "$a_ip")" = 0
few_netns() { test "$(netns_count)" -le 8; }
check "deleting the services removes their namespaces (the pool's 8 stay)" wait_until 10 few_netns
attached() { test "$(ip -o link show master "$net_bridge" type veth | wc -l)" = "$(netns_count)"; }
check "the bridge holds exactly one veth per namespace left (no veth without one)" wait_until 10 attached
# A bridge takes its lowest port's hardware address unless it has one of its own: instances'
# ARP entries for the gateway then went stale whenever a veth came or went, and their
# connections stalled for seconds (a server-sent events stream in e2e_protocols did).
check "the bridge's hardware address stayed $mac_at_start while veths came and went ($(bridge_mac))" \
  test "$(bridge_mac)" = "$mac_at_start"
stop_daemon
check "a stop removes the bridge" bash -c "! ip link show $net_bridge >/dev/null 2>&1"
check "...and its nftables table" bash -c "! nft list table ip elafros_$net_bridge >/dev/null 2>&1"
check "...and the pool's namespaces" test "$(netns_count)" = 0
finish
