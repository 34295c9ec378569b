#!/usr/bin/env bash
# Install what pallet needs on Debian 12 (as root), then run a container.
#
#   bash scripts/install.sh                  install pallet, make the busybox image, run a container from it
#   bash scripts/install.sh --no-demo        install pallet only
#   bash scripts/install.sh --no-demo --dev  also what the tests and benchmarks need: the peers pallet is
#                                            compared with (runc, crun, podman, docker, ...) and the dev
#                                            Python packages (what scripts/test.sh and .ci/run use)
#
# Idempotent: packages already present are not fetched again, the venv is reused.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
demo=1
dev=0
for arg in "$@"; do
    case $arg in
        --no-demo) demo=0 ;;
        --dev) dev=1 ;;
        *) echo "install.sh: unknown option '$arg' (known: --no-demo, --dev)" >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (pallet creates namespaces, mounts and cgroups)" >&2; exit 1; }

# Debian packages pallet runs with: the interpreter, busybox-static for the default
# image, libseccomp (seccomp filters), tini-static (--init), nftables (bridge networks'
# NAT and published ports); rootless mode: uidmap (newuidmap/newgidmap), fuse-overlayfs
# (overlay where the kernel's rootless overlay is refused), passt (pasta) and
# slirp4netns (networking without root).
pkgs=(python3 python3-venv busybox-static libseccomp2 tini nftables uidmap fuse-overlayfs passt slirp4netns)
# Only the tests and benchmarks use these: a compiler for Python packages built from
# source, the peers pallet is measured against and checked with, the runtime-spec schema.
if [ $dev = 1 ]; then
    pkgs+=(python3-dev gcc iproute2 nftables util-linux jq hyperfine runc crun skopeo umoci podman buildah
           containerd docker.io docker-registry golang-github-opencontainers-specs-dev e2fsprogs
           runsc tmux docker-compose)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install.sh: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Rootless networking (pasta, slirp4netns) opens /dev/net/tun as the user, rootless --userns=remap
# /dev/fuse (fuse-overlayfs): udev's rules make them 0666; a machine without udev (a VM, a
# container) leaves them 0600.
for node in /dev/net/tun /dev/fuse; do  # not $dev: that is the --dev flag
    if [ -c "$node" ] && [ "$(stat -c %a "$node")" != 666 ]; then
        chmod 0666 "$node"
    fi
done

# The venv uses Debian's interpreter directly (not a pyenv shim, which adds
# ~150 ms to every start of a console script).
venv=$top/.venv
if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3 -m venv "$venv"
fi
# a dev install also satisfies a plain one; either is redone when pyproject.toml changes
hash=$(sha256sum pyproject.toml | cut -c1-16)
extras=""
[ $dev = 1 ] && extras="[dev]"
if [ ! -e "$venv/.installed-dev-$hash" ] && { [ $dev = 1 ] || [ ! -e "$venv/.installed-run-$hash" ]; }; then
    "$venv/bin/pip" install -q --upgrade pip 2>&1 | { grep -v "^WARNING: Location" >&2 || true; }
    "$venv/bin/pip" install -q -e ".$extras" 2>&1 | { grep -v "^WARNING: Location" >&2 || true; }
    rm -f "$venv"/.installed-*
    touch "$venv/.installed-$([ $dev = 1 ] && echo dev || echo run)-$hash"
fi

# Console scripts written by pip import `re` (~10 ms) and run site.py (~5 ms)
# before pallet's code. pallet-runtime and the shim must start fast, so they
# get launchers of our own: isolated interpreter, no site, src on sys.path.
write_launcher() {  # NAME MODULE FLAGS
    cat > "$venv/bin/$1" <<PY
#!$venv/bin/python $3
import sys
sys.path.insert(0, "$top/src")
from $2 import main
sys.exit(main())
PY
    chmod 755 "$venv/bin/$1"
}
write_launcher pallet-runtime pallet.runtime.cli "-IS"  # one shebang argument: "-I -S" reaches python as "-I -S"
write_launcher pallet-shim pallet.engine.shim.main "-IS"
# pallet itself needs the venv's packages (registry commands): their directory goes on the
# path by hand, site.py and its .pth files stay off (~3 ms); run() ends with os._exit
site_packages=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
cat > "$venv/bin/pallet" <<PY
#!$venv/bin/python -IS
import sys
sys.path[:0] = ["$top/src"]
sys.path.append("$site_packages")
from pallet.cli.main import run
run()
PY
chmod 755 "$venv/bin/pallet"
ln -sf "$venv/bin/pallet-runtime" /usr/local/bin/pallet-runtime
[ -e "$venv/bin/pallet" ] && ln -sf "$venv/bin/pallet" /usr/local/bin/pallet

[ $demo = 1 ] || exit 0

# The main job: the default busybox image, made locally from Debian's busybox-static
# (no internet needed), an image built on it from a Dockerfile, and a container run from
# that on the default bridge network by the engine (shim + pallet-runtime).
"$venv/bin/pallet" image inspect busybox:latest >/dev/null 2>&1 || bash "$top/scripts/make-busybox-image.sh"
"$venv/bin/pallet" build -q -t pallet-hello - >/dev/null <<'EOF'
FROM busybox
RUN echo "Hello from a pallet container, built by pallet build!" > /greeting
CMD ["sh", "-c", "cat /greeting; ip -4 -o addr show eth0 | awk '{print \"my address on the bridge: \" $4}'"]
EOF
exec "$venv/bin/pallet" run --rm pallet-hello
