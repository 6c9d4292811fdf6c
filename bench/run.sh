#!/usr/bin/env bash
# The benchmark suite of Substrate (SPEC §9), run by `./dev.sh bench`.
#
#   bench/run.sh [--only defs,warm,resume,cold,coalesce,memory,spaces] [--rounds N] [--seconds S] [--hop-seconds S]
#
# Builds the release binaries, makes sure the example images exist, then runs
# substrate-bench, which prints a table and writes target/bench/report.json
# (a flat JSON object of numbers). Needs a running Docker Engine and root (for
# the loop-mounted XFS image); installs wrk, nginx and xfsprogs when missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v mkfs.xfs >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.xfs ] || missing+=(xfsprogs)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    die "missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
  fi
  command -v apt-get >/dev/null 2>&1 || die "not a Debian/Ubuntu machine; install ${missing[*]} yourself"
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # RUNLEVEL=1 keeps the package scripts from starting nginx's own service.
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  say "wrk, nginx and xfsprogs are present"
fi
export PATH="$PATH:/usr/sbin:/sbin"

docker info >/dev/null 2>&1 || die "the Docker Engine is not running (./dev.sh up starts it)"

say "cargo build --release -p substrate -p substrate-bench"
cargo build --release -p substrate -p substrate-bench

say "example binaries and images"
images/build-binaries.sh
target/release/substrate images build --defs defs

say "running the benchmarks (a few minutes)"
mkdir -p target/bench
exec target/release/substrate-bench --root "$ROOT" --out target/bench/report.json "$@"
