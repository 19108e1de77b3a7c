#!/bin/sh
# busybox-rootfs.sh DIR
#
# Assembles a minimal container root filesystem in DIR from the host's static busybox
# (Debian package busybox-static): /bin/busybox plus one symlink per applet, the directories a
# container runtime expects (proc, sys, dev, tmp, etc, ...), and small /etc/passwd, /etc/group.
# Reused by the tests of several crates: keep it small and its output stable.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
busybox=${BUSYBOX:-/bin/busybox}

if ! "$busybox" --list >/dev/null 2>&1; then
    echo "$0: $busybox is not a working busybox (install busybox-static)" >&2
    exit 1
fi

mkdir -p "$dir"
for d in bin sbin usr/bin usr/sbin etc proc sys dev dev/pts dev/shm tmp root var run mnt; do
    mkdir -p "$dir/$d"
done
chmod 1777 "$dir/tmp"

cp "$busybox" "$dir/bin/busybox"
chmod 0755 "$dir/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] && continue
    [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
done

cat >"$dir/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$dir/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
: >"$dir/etc/hostname"
: >"$dir/etc/hosts"
: >"$dir/etc/resolv.conf"
