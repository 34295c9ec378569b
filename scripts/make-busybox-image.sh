#!/usr/bin/env bash
# make-busybox-image.sh [--root DIR] [REF]: the default image, made locally from Debian's
# busybox-static (no registry needed): REF (default busybox:latest) in pallet's image store.
#
# The rootfs is the one make-busybox-bundle.sh builds (busybox, its applet symlinks in /bin,
# /etc/passwd and /etc/group), packed with fixed owners, order and mtimes, then given to
# `pallet import` with CMD ["sh"] and the usual PATH. The store is --root DIR, else
# $PALLET_ROOT, else /var/lib/pallet (pallet's own default).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
root_args=()
if [ "${1:-}" = --root ]; then
    [ $# -ge 2 ] || { echo "usage: $0 [--root DIR] [REF]" >&2; exit 2; }
    root_args=(--root "$2"); shift 2
fi
ref=${1:-busybox:latest}
bb=/bin/busybox
[ -x "$bb" ] || { echo "$0: $bb missing; apt-get install busybox-static" >&2; exit 1; }
pallet=${PALLET:-$top/.venv/bin/pallet}
[ -x "$pallet" ] || { echo "$0: $pallet missing; run scripts/install.sh first" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,etc,dev,proc,sys,tmp,root}
cp "$bb" "$rootfs/bin/busybox"
# what `busybox --install -s /bin` makes, without needing chroot (or root)
for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || [ -e "$rootfs/bin/$applet" ] || ln -s /bin/busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
chmod 755 "$rootfs" "$rootfs"/{bin,etc,dev,proc,sys,root}
chmod 1777 "$rootfs/tmp"
tar --sort=name --mtime=@0 --numeric-owner --owner=0 --group=0 -C "$rootfs" -cf - . |
    "$pallet" "${root_args[@]}" import -m "busybox-static from Debian, made by make-busybox-image.sh" \
        --change 'CMD ["sh"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$ref"
