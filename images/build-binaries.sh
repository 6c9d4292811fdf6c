#!/usr/bin/env bash
# Builds the example services as static binaries for their `FROM scratch`
# images and puts each beside its Dockerfile (images/echo/substrate-echo,
# images/notes/substrate-notes); images/build-gotty.sh then assembles the
# gotty image's files (images/gotty/rootfs/). The explicit --target keeps
# build scripts and proc-macros dynamic while the binaries link statically.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
echo "building static substrate-echo, substrate-notes and substrate-gotty ($target)"
RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --target "$target" -p substrate-echo -p substrate-notes -p substrate-gotty

for name in echo notes; do
    cp "target/$target/release/substrate-$name" "images/$name/substrate-$name"
    # The release profile keeps debug info for the daemon; images need none.
    if command -v strip >/dev/null; then strip "images/$name/substrate-$name"; fi
    echo "images/$name/substrate-$name"
done

./images/build-gotty.sh "target/$target/release/substrate-gotty"
