#!/usr/bin/env bash
# bench/runtime.sh - the OCI runtime alone: `run` of /bin/true in one busybox bundle,
# pallet-runtime beside runc and crun in one hyperfine run (fresh container id per run),
# then `exec` of /bin/true into a running container (one per runtime, kept running).
# Prints the median wall time of each and the ratios pallet/runc and pallet/crun.
#
#   sudo bench/runtime.sh            RUNS=30 WARMUP=3 by default
#
# Machine quirk (cgroup v1 hybrid): crun 1.8 refuses to run while the cgroup2 mount
# at /sys/fs/cgroup/unified owns a controller. As the shared peer benchmarks do, a
# controller found there is mounted as its own v1 hierarchy at /sys/fs/cgroup/<name>
# and left mounted (unmounting while cgroups exist hides them). NO_CGFIX=1 skips that.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
PALLET=${PALLET_RUNTIME:-$top/.venv/bin/pallet-runtime}

die() { echo "runtime.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
for tool in runc crun hyperfine jq busybox; do command -v "$tool" >/dev/null || die "missing $tool"; done
[ -x "$PALLET" ] || die "missing $PALLET (run scripts/install.sh)"

work=$(mktemp -d /tmp/pallet-bench-runtime.XXXXXX)
cleanup() {
    for rt in pallet runc crun; do
        for id in $(ls "$work/root-$rt" 2>/dev/null); do
            case $rt in pallet) "$PALLET" --root "$work/root-$rt" delete --force "$id" ;;
                        *) "$rt" --root "$work/root-$rt" delete --force "$id" ;; esac >/dev/null 2>&1 || true
        done
    done
    rm -rf "$work"
}
trap cleanup EXIT

if [ "${NO_CGFIX:-0}" != 1 ] && [ -r /sys/fs/cgroup/unified/cgroup.controllers ]; then
    for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
        if ! awk '$3=="cgroup"{print $4}' /proc/mounts | tr ',' '\n' | grep -qx "$c"; then
            echo "runtime.sh: mounting the v1 '$c' hierarchy at /sys/fs/cgroup/$c for crun (left mounted)" >&2
            mkdir -p "/sys/fs/cgroup/$c" && mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" || true
        fi
    done
fi

# one bundle for all three: busybox rootfs, runc's default config running /bin/true
bundle=$work/bundle
mkdir -p "$bundle"/rootfs/{bin,dev,proc,sys,tmp,etc}
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
ln -s busybox "$bundle/rootfs/bin/sleep"
(cd "$bundle" && runc spec)
jq '.process.terminal = false | .process.args = ["/bin/true"] | .ociVersion = "1.0.2"' \
    "$bundle/config.json" > "$bundle/config.tmp" && mv "$bundle/config.tmp" "$bundle/config.json"

cat > "$work/run1.sh" <<'SH'
#!/bin/sh
# run1.sh RUNTIME ROOT BUNDLE: one `run` with a fresh container id
exec "$1" --root "$2" run --bundle "$3" "pb$$x$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')" </dev/null
SH
chmod +x "$work/run1.sh"
for rt in pallet runc crun; do
    bin=$rt; [ "$rt" = pallet ] && bin=$PALLET
    "$work/run1.sh" "$bin" "$work/root-$rt" "$bundle" || die "$rt run failed"
done

hyperfine --style basic -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/run.json" \
    -n pallet "$work/run1.sh $PALLET $work/root-pallet $bundle" \
    -n runc "$work/run1.sh runc $work/root-runc $bundle" \
    -n crun "$work/run1.sh crun $work/root-crun $bundle" >&2

# exec: one container per runtime running sleep; each run execs /bin/true into it
sleeper=$work/sleeper
mkdir -p "$sleeper"
jq --arg root "$bundle/rootfs" '.process.args = ["/bin/sleep", "3600"] | .root.path = $root' \
    "$bundle/config.json" > "$sleeper/config.json"
for rt in pallet runc crun; do
    bin=$rt; [ "$rt" = pallet ] && bin=$PALLET
    "$bin" --root "$work/root-$rt" run --detach --bundle "$sleeper" "sleeper-$rt" </dev/null >/dev/null 2>&1 \
        || die "$rt run --detach failed"
done
hyperfine --style basic -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/exec.json" \
    -n pallet "$PALLET --root $work/root-pallet exec sleeper-pallet /bin/true" \
    -n runc "runc --root $work/root-runc exec sleeper-runc /bin/true" \
    -n crun "crun --root $work/root-crun exec sleeper-crun /bin/true" >&2

median() { jq -r --arg n "$1" '.results[] | select(.command==$n) | .median*1000' "$2" | awk '{printf "%.1f", $1}'; }
p=$(median pallet "$work/run.json"); r=$(median runc "$work/run.json"); c=$(median crun "$work/run.json")
pe=$(median pallet "$work/exec.json"); re=$(median runc "$work/exec.json"); ce=$(median crun "$work/exec.json")
printf '\n%-16s %10s %10s\n' runtime "run ms" "exec ms"
printf '%-16s %10s %10s\n' pallet-runtime "$p" "$pe" runc "$r" "$re" crun "$c" "$ce"
awk -v p="$p" -v r="$r" -v c="$c" 'BEGIN{printf "SUMMARY runtime run: pallet=%sms runc=%sms crun=%sms pallet/runc=%.2f pallet/crun=%.2f\n", p, r, c, p/r, p/c}'
awk -v p="$pe" -v r="$re" -v c="$ce" 'BEGIN{printf "SUMMARY runtime exec: pallet=%sms runc=%sms crun=%sms pallet/runc=%.2f pallet/crun=%.2f\n", p, r, c, p/r, p/c}'
