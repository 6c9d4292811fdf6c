#!/usr/bin/env bash
# Assembles the files of the gotty image in images/gotty/rootfs/, which
# images/gotty/Dockerfile copies into a `FROM scratch` image:
#
#   /substrate-gotty                    the static server (argument 1)
#   /bin/busybox, /bin/sh, /bin/ls, …   Debian's busybox-static and its applets
#   /usr/share/substrate-gotty/www/     the page: images/gotty/frontend/ plus
#                                       xterm.js and its fit addon from npm
#   /etc/passwd, /etc/group, /tmp
#
# npm packages are installed from images/gotty/package-lock.json only when
# images/gotty/node_modules does not already hold those versions.
# Called by images/build-binaries.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

binary="${1:?usage: images/build-gotty.sh PATH-TO-STATIC-substrate-gotty}"
dir=images/gotty
rootfs="$dir/rootfs"

# Debian's busybox-static installs /bin/busybox; the dynamic `busybox`
# package installs one too, which would not run in a scratch image.
busybox=/bin/busybox
static() {
    [ -x "$1" ] || return 1
    case "$(ldd "$1" 2>&1 || true)" in
        *"not a dynamic executable"* | *"statically linked"*) return 0 ;;
        *) return 1 ;;
    esac
}
if ! static "$busybox"; then
    echo "error: a static $busybox is needed for the gotty image; run: apt-get install busybox-static" >&2
    exit 1
fi

# xterm.js, at the versions package-lock.json names.
installed() {
    local pkg="$1" want
    want=$(node -e "console.log(require('./$dir/package-lock.json').packages['node_modules/$pkg'].version)")
    [ -f "$dir/node_modules/$pkg/package.json" ] &&
        [ "$(node -e "console.log(require('./$dir/node_modules/$pkg/package.json').version)")" = "$want" ]
}
command -v npm >/dev/null || { echo "error: npm is needed for the gotty image (xterm.js); run: apt-get install npm" >&2; exit 1; }
if ! installed @xterm/xterm || ! installed @xterm/addon-fit; then
    echo "npm ci in $dir (xterm.js)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

rm -rf "$rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/usr/share/substrate-gotty/www"
chmod 1777 "$rootfs/tmp"

cp "$binary" "$rootfs/substrate-gotty"
if command -v strip >/dev/null; then strip "$rootfs/substrate-gotty"; fi

cp "$busybox" "$rootfs/bin/busybox"
# One symlink per applet (sh, ls, cat, vi, …), all in /bin.
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done

www="$rootfs/usr/share/substrate-gotty/www"
cp "$dir"/frontend/* "$www/"
cp "$dir/node_modules/@xterm/xterm/lib/xterm.js" "$www/xterm.js"
cp "$dir/node_modules/@xterm/xterm/css/xterm.css" "$www/xterm.css"
cp "$dir/node_modules/@xterm/addon-fit/lib/addon-fit.js" "$www/addon-fit.js"
cp "$dir/node_modules/@xterm/xterm/LICENSE" "$www/xterm-LICENSE.txt"

cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/spaces/data/tree:/bin/sh
PASSWD
echo 'root:x:0:' >"$rootfs/etc/group"

echo "$rootfs ($(du -sh "$rootfs" | cut -f1))"
