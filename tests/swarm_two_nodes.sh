#!/usr/bin/env bash
# A two-node Docker Swarm on one machine, for `./dev.sh swarm-test`
# (tests/swarm_two_nodes.rs). Node 1 is the local Docker Engine (the
# manager); node 2 is a second dockerd in its own network namespace with its
# own data root, exec root, pidfile and socket, joined as a worker.
#
#   tests/swarm_two_nodes.sh up        build the swarm; prints the settings as NAME=VALUE lines
#   tests/swarm_two_nodes.sh node-down lose node 2: link down, its dockerd, containerd and containers killed
#   tests/swarm_two_nodes.sh node-up   bring node 2 back (it rejoins with its state)
#   tests/swarm_two_nodes.sh down      take it all apart; the local engine leaves the swarm
#
# Addresses: host side 10.213.0.1, node 2 10.213.0.2 (veth); node 2's
# networks (docker_gwbridge among them) come from 10.214.0.0/16, routed from
# the host through node 2, so the daemon on the host reaches node 2's tasks.
set -euo pipefail

NETNS=substrate-node2
DIR=/run/substrate-node2
DATA_ROOT=/var/lib/substrate-node2
SOCK="$DIR/docker.sock"
HOST_IP=10.213.0.1
NODE2_IP=10.213.0.2
POOL=10.214.0.0/16
LOG=/var/log/substrate-node2.log
IMAGES=(substrate-echo substrate-notes)

say() { printf '==> %s\n' "$*" >&2; }
node2() { docker -H "unix://$SOCK" "$@"; }

start_dockerd2() {
  say "starting node 2's dockerd in network namespace $NETNS (socket $SOCK, data root $DATA_ROOT, log $LOG)"
  mkdir -p "$DIR" "$DATA_ROOT"
  # nsenter (not `ip netns exec`, which remounts /sys and so hides the
  # cgroup hierarchy dockerd needs). Tasks by image id are not pulled; by
  # name Swarm tries a pull first, which hangs here without a registry.
  nsenter --net="/run/netns/$NETNS" env DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 \
    setsid dockerd --data-root "$DATA_ROOT" --exec-root "$DIR/exec" --pidfile "$DIR/dockerd.pid" \
    -H "unix://$SOCK" --default-address-pool "base=$POOL,size=24" >>"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 100); do
    node2 info >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  say "node 2's dockerd did not start; see $LOG"
  return 1
}

# node 2's forwarding from the host into its docker_gwbridge (Docker's own
# rules only let published ports in).
open_gateway() {
  nsenter --net="/run/netns/$NETNS" iptables -C DOCKER-USER -i sb-n2 -o docker_gwbridge -j ACCEPT 2>/dev/null ||
    nsenter --net="/run/netns/$NETNS" iptables -I DOCKER-USER -i sb-n2 -o docker_gwbridge -j ACCEPT
}

cmd_up() {
  local state
  state="$(docker info --format '{{.Swarm.LocalNodeState}}')"
  if [ "$state" != inactive ]; then
    say "the local Docker Engine is already in a swarm (state $state); the two-node test makes its own: run docker swarm leave --force first"
    return 1
  fi
  say "network namespace $NETNS with a veth pair: host $HOST_IP, node 2 $NODE2_IP"
  ip netns add "$NETNS"
  ip link add sb-n1 type veth peer name sb-n2
  ip link set sb-n2 netns "$NETNS"
  ip addr add "$HOST_IP/24" dev sb-n1
  ip link set sb-n1 up
  ip netns exec "$NETNS" sh -c "ip link set lo up && ip addr add $NODE2_IP/24 dev sb-n2 && ip link set sb-n2 up && ip route add default via $HOST_IP"
  start_dockerd2
  say "docker swarm init --advertise-addr $HOST_IP (the local engine, manager)"
  docker swarm init --advertise-addr "$HOST_IP" >/dev/null
  say "node 2 joins as a worker"
  node2 swarm join --token "$(docker swarm join-token -q worker)" --advertise-addr "$NODE2_IP" "$HOST_IP:2377" >/dev/null
  local id
  id="$(node2 info --format '{{.Swarm.NodeID}}')"
  say "labelling node 2 ($id) substrate.spaces=node2"
  docker node update --label-add substrate.spaces=node2 "$id" >/dev/null
  say "loading ${IMAGES[*]} into node 2 (docker save | docker load: no registry)"
  docker save "${IMAGES[@]}" | node2 load -q >/dev/null
  say "route $POOL via node 2; node 2 forwards into its docker_gwbridge"
  ip route replace "$POOL" via "$NODE2_IP"
  open_gateway
  echo "NODE2_ID=$id"
  echo "NODE2_ENGINE=unix://$SOCK"
}

cmd_node_down() {
  say "losing node 2: link down, dockerd, containerd and every container of it killed"
  ip netns exec "$NETNS" ip link set sb-n2 down || true
  local pids
  pids="$(pgrep -f -- "$DIR/" || true)"
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  # Its containers (their shims were killed above; the processes remain).
  for cg in /sys/fs/cgroup/pids/docker/*/; do
    [ -f "$cg/cgroup.procs" ] || continue
    local cid
    cid="$(basename "$cg")"
    if [ -d "$DATA_ROOT/containers/$cid" ]; then
      xargs -r kill -9 <"$cg/cgroup.procs" 2>/dev/null || true
    fi
  done
}

cmd_node_up() {
  say "node 2 is back: link up, dockerd restarted"
  ip netns exec "$NETNS" ip link set sb-n2 up
  ip netns exec "$NETNS" ip route replace default via "$HOST_IP"
  rm -f "$DIR/dockerd.pid"
  start_dockerd2
  open_gateway
}

cmd_down() {
  say "taking the two-node swarm apart"
  docker swarm leave --force >/dev/null 2>&1 || true
  if node2 info >/dev/null 2>&1; then
    node2 swarm leave --force >/dev/null 2>&1 || true
  fi
  if [ -f "$DIR/dockerd.pid" ]; then
    local pid
    pid="$(cat "$DIR/dockerd.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  cmd_node_down >/dev/null 2>&1 || true
  ip route del "$POOL" 2>/dev/null || true
  ip netns del "$NETNS" 2>/dev/null || true
  ip link del sb-n1 2>/dev/null || true
  # What the killed dockerd left mounted (container filesystems, netns files).
  awk -v a="$DATA_ROOT" -v b="$DIR" 'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/mounts |
    sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$DIR" "$DATA_ROOT"
}

case "${1:-}" in
  up) cmd_up ;;
  node-down) cmd_node_down ;;
  node-up) cmd_node_up ;;
  down) cmd_down ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
