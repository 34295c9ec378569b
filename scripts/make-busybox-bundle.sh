#!/usr/bin/env bash
# make-busybox-bundle.sh DIR [ARG...]: an OCI bundle at DIR whose rootfs is
# Debian's static busybox, with config.json from `pallet-runtime spec` running
# ARG... (default: sh). Made locally: no image registry is needed.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DIR [ARG...]" >&2; exit 2; }
dir=$1; shift
bb=/bin/busybox
[ -x "$bb" ] || { echo "$0: $bb missing; apt-get install busybox-static" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir"/rootfs/{bin,etc,dev,proc,sys,tmp,root}
cp "$bb" "$dir/rootfs/bin/busybox"
chroot "$dir/rootfs" /bin/busybox --install -s /bin
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dir/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/rootfs/etc/group"
chmod 1777 "$dir/rootfs/tmp"
(cd "$dir" && pallet-runtime spec)
[ $# -gt 0 ] || set -- sh
"$(dirname "$0")/../.venv/bin/python" - "$dir/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
with open(path) as f:
    config = json.load(f)
config["process"]["terminal"] = False
config["process"]["args"] = args
with open(path, "w") as f:
    json.dump(config, f, indent=2)
PY
