#!/usr/bin/env bash
# Real hosts on one machine for the multi-host tests (root, Linux):
#   3 swarm nodes (n1 manager, n2 and n3 workers) and 2 plain Docker hosts
#   (h1, h2), all reachable over SSH, each a network namespace with its own
#   dockerd, all on one bridge (10.77.0.0/24, the only addresses used).
#
#   bash scripts/multi-host.sh up     # creates them; writes $DM_RIG_DIR/env
#   bash scripts/multi-host.sh down   # removes everything `up` made
#
# `nsenter --net`, not `ip netns exec`: the latter remounts /sys and dockerd
# then fails ("Devices cgroup isn't mounted"). Each dockerd runs under
# `unshare --uts` with its own hostname so swarm nodes are told apart.
set -euo pipefail
RIG="${DM_RIG_DIR:-/tmp/dm-rig}"
BRIDGE=dmrig0
NET=10.77.0
SWARM_NODES="n1 n2 n3"
SSH_HOSTS="h1 h2"
MARK="# dm-rig, written by multi-host.sh"

addr() {
  case "$1" in
    n1) echo "$NET.2" ;; n2) echo "$NET.3" ;; n3) echo "$NET.4" ;;
    h1) echo "$NET.11" ;; h2) echo "$NET.12" ;;
  esac
}
sock() { echo "$RIG/$1/docker.sock"; }
dk() { local n=$1; shift; docker -H "unix://$(sock "$n")" "$@"; }

down() {
  for n in $SWARM_NODES $SSH_HOSTS; do
    [ -S "$(sock "$n")" ] && dk "$n" swarm leave --force >/dev/null 2>&1 || true
    for pidfile in "$RIG/$n/sshd.pid" "$RIG/$n/dockerd.pid"; do
      if [ -f "$pidfile" ]; then
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
      fi
    done
    # Containers of a killed engine leave their shims and mounts behind.
    pkill -9 -f "containerd-shim.*$RIG/$n/" 2>/dev/null || true
    ip netns del "dm-$n" 2>/dev/null || true
    ip link del "veth-$n-h" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
  if [ -f "$HOME/.ssh/config" ]; then
    sed -i "/^$MARK begin/,/^$MARK end/d" "$HOME/.ssh/config"
  fi
  # dockerd bind-mounts its data root and its netns files; a rig left by a
  # killed run (or a reboot of the processes only) keeps those mounts, so
  # unmount everything under both roots, deepest first, before removing.
  awk -v a="$RIG" -v b=/var/lib/dm-rig 'index($2, a) == 1 || index($2, b) == 1 {print $2}' /proc/mounts \
    | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$RIG" /var/lib/dm-rig
}

start_node() {
  local n=$1 ip
  ip=$(addr "$n")
  ip netns add "dm-$n"
  ip link add "veth-$n" type veth peer name "veth-$n-h"
  ip link set "veth-$n" netns "dm-$n"
  ip link set "veth-$n-h" master "$BRIDGE" up
  ip netns exec "dm-$n" ip addr add "$ip/24" dev "veth-$n"
  ip netns exec "dm-$n" ip link set "veth-$n" up
  ip netns exec "dm-$n" ip link set lo up
  mkdir -p "$RIG/$n" "/var/lib/dm-rig/$n"
  nsenter --net="/var/run/netns/dm-$n" unshare --uts sh -c "hostname dm-$n; exec dockerd \
      --data-root /var/lib/dm-rig/$n --exec-root $RIG/$n/exec --pidfile $RIG/$n/dockerd.pid \
      -H unix://$(sock "$n") --iptables=false --ip-masq=false --insecure-registry $NET.0/24" \
      > "$RIG/$n/dockerd.log" 2>&1 &
}

wait_engine() {
  local n=$1
  for _ in $(seq 1 60); do dk "$n" info >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "dockerd of $n did not start:" >&2
  tail -20 "$RIG/$n/dockerd.log" >&2
  return 1
}

up() {
  command -v sshd >/dev/null || { echo "openssh-server is required" >&2; exit 2; }
  down
  mkdir -p "$RIG"
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The host's dockerd sets FORWARD to DROP; without this, nodes cannot talk.
  iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  for n in $SWARM_NODES $SSH_HOSTS; do start_node "$n"; done
  for n in $SWARM_NODES $SSH_HOSTS; do wait_engine "$n"; done

  dk n1 swarm init --advertise-addr "$(addr n1)" >/dev/null
  token=$(dk n1 swarm join-token -q worker)
  for n in n2 n3; do dk "$n" swarm join --token "$token" "$(addr n1):2377" >/dev/null; done

  # SSH: one key for the rig, host keys made here, the remote shell's
  # DOCKER_HOST pointing at that node's engine (what `docker system
  # dial-stdio`, run by an ssh:// Docker client, connects to).
  ssh-keygen -q -t ed25519 -N "" -f "$RIG/id_ed25519"
  ssh-keygen -q -t ed25519 -N "" -f "$RIG/ssh_host_ed25519_key"
  cp "$RIG/id_ed25519.pub" "$RIG/authorized_keys"
  mkdir -p /run/sshd
  # Swarm nodes too: a swarm named by ssh:// addresses is one other
  # machines can forward to (a move into a swarm).
  for n in $SWARM_NODES $SSH_HOSTS; do
    nsenter --net="/var/run/netns/dm-$n" /usr/sbin/sshd -p 22 \
      -o PidFile="$RIG/$n/sshd.pid" -o HostKey="$RIG/ssh_host_ed25519_key" \
      -o AuthorizedKeysFile="$RIG/authorized_keys" -o StrictModes=no \
      -o PasswordAuthentication=no -o PermitRootLogin=prohibit-password \
      -o SetEnv="DOCKER_HOST=unix://$(sock "$n")"
  done
  # Containers of every node and host reach the other hosts as on real
  # machines (where dockerd's own masquerading does it; it is off here with
  # --iptables=false): a proxy left on one host or swarm node forwards to
  # another host after `migrate --hosts`.
  for n in $SWARM_NODES $SSH_HOSTS; do
    nsenter --net="/var/run/netns/dm-$n" iptables -t nat -A POSTROUTING -o "veth-$n" -j MASQUERADE
  done
  mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"
  touch "$HOME/.ssh/config"
  {
    echo "$MARK begin"
    echo "Host $NET.*"
    echo "  IdentityFile $RIG/id_ed25519"
    echo "  UserKnownHostsFile $RIG/known_hosts"
    echo "  ConnectTimeout 5"
    echo "$MARK end"
  } | cat - "$HOME/.ssh/config" > "$RIG/ssh_config" && mv "$RIG/ssh_config" "$HOME/.ssh/config"
  chmod 600 "$HOME/.ssh/config"
  for n in $SWARM_NODES $SSH_HOSTS; do
    for _ in $(seq 1 20); do
      ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new "root@$(addr "$n")" docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
  done

  {
    echo "DM_RIG_BRIDGE=$BRIDGE"
    echo "DM_RIG_MANAGER=unix://$(sock n1)"
    echo "DM_RIG_SWARM_NODES=$(for n in $SWARM_NODES; do printf 'unix://%s,' "$(sock "$n")"; done | sed 's/,$//')"
    echo "DM_RIG_SWARM_ADDRS=$(for n in $SWARM_NODES; do printf '%s,' "$(addr "$n")"; done | sed 's/,$//')"
    echo "DM_RIG_SWARM_SSH=$(for n in $SWARM_NODES; do printf 'ssh://root@%s,' "$(addr "$n")"; done | sed 's/,$//')"
    echo "DM_RIG_SSH_HOSTS=$(for n in $SSH_HOSTS; do printf 'ssh://root@%s,' "$(addr "$n")"; done | sed 's/,$//')"
    echo "DM_RIG_SSH_ADDRS=$(for n in $SSH_HOSTS; do printf '%s,' "$(addr "$n")"; done | sed 's/,$//')"
    echo "DM_RIG_SSH_SOCKS=$(for n in $SSH_HOSTS; do printf 'unix://%s,' "$(sock "$n")"; done | sed 's/,$//')"
  } > "$RIG/env"
  dk n1 node ls
  for n in $SSH_HOSTS; do
    printf '%s over ssh: ' "$n"
    ssh -o BatchMode=yes "root@$(addr "$n")" docker info --format '{{.Name}}'
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
