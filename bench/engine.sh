#!/usr/bin/env bash
# bench/engine.sh - the engine: pallet beside podman, same busybox image, in one run.
#
#   1. `run --rm busybox true`: pallet+crun, pallet+pallet-runtime, podman+crun (hyperfine)
#   2. `exec CONTAINER true` into a running container: pallet+crun vs podman+crun (hyperfine)
#   3. N detached `sleep 600` containers started one after another (pallet+crun, podman+crun):
#      total start time, then per container the supervisor's RSS/PSS (pallet-shim vs conmon)
#
# Prints medians and ratios pallet/podman, and a SUMMARY line. Targets: pallet run <= 0.5x
# podman; N detached starts <= 0.25x podman; supervisor PSS per container <= 2x conmon's.
#
# The supervisors' memory, honestly: pallet's shims are forked by the run dir's zygote (one
# warm pallet-shim per run dir, started by the first run), so they share the interpreter's
# pages with it and with each other; PSS divides each shared page among its sharers. The
# per-container PSS printed is therefore the shims' mean PSS plus the zygote's own PSS
# divided by N (the zygote exists for them); RSS counts shared pages whole, in every process.
# The line says how many shims were forked and how many exec'd (a fresh interpreter each).
# EXEC_SHIMS=1 turns the zygote off (PALLET_SHIM_ZYGOTE=0): every shim a fresh interpreter.
#
#   sudo bench/engine.sh            RUNS=15 ROUNDS=3 WARMUP=2 N=50 by default
#
# The run and exec timings are taken in ROUNDS rounds of RUNS runs per command, the
# commands taking turns, and the median is over all of a command's runs: a slow spell of
# the machine then falls on every engine alike, not on whichever ran at that moment.
#
# Everything lives in a private temp dir (pallet --root/--run-root, podman --root/--runroot);
# the host's stores are not touched. podman runs with --network none: pallet's default is a
# private network namespace with loopback only, the same work. crun 1.8 needs the cgroup v1
# hybrid fix (shared/bench/README.md): a controller owned by the cgroup2 mount is mounted as
# its own v1 hierarchy and left mounted. NO_CGFIX=1 skips that.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-15}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
N=${N:-50}
PALLET_BIN=${PALLET:-$top/.venv/bin/pallet}
if [ "${EXEC_SHIMS:-0}" = 1 ]; then export PALLET_SHIM_ZYGOTE=0; fi

die() { echo "engine.sh: $*" >&2; exit 1; }
log() { echo "engine.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || die "run as root"
for tool in podman crun hyperfine jq busybox; do command -v "$tool" >/dev/null || die "missing $tool"; done
[ -x "$PALLET_BIN" ] || die "missing $PALLET_BIN (run scripts/install.sh)"

work=$(mktemp -d /tmp/pallet-bench-engine.XXXXXX)
PL="$PALLET_BIN --root $work/pallet-root --run-root $work/pallet-run"
P="podman --root $work/storage --runroot $work/runroot --tmpdir $work/libpod --storage-driver overlay --cgroup-manager cgroupfs --events-backend file"
cleanup() {
    $PL ps -a -q --no-trunc 2>/dev/null | xargs -r $PL rm -f >/dev/null 2>&1 || true
    # the run dir's shim zygote, by the pid its pid file and its command line agree on
    local z
    z=$(cat "$work/pallet-run/shim-zygote.pid" 2>/dev/null || true)
    if [ -n "$z" ] && tr '\0' ' ' <"/proc/$z/cmdline" 2>/dev/null | grep -q -- "--zygote $work/pallet-run"; then
        kill -9 "$z" 2>/dev/null || true
    fi
    $P rm -af -t 0 >/dev/null 2>&1 || true
    $P rmi -af >/dev/null 2>&1 || true
    umount -R "$work/storage/overlay" 2>/dev/null || true
    rm -rf "$work"
    # the engine's cgroup parent, left like docker's /docker: gone once empty (busy: still in use)
    for d in /sys/fs/cgroup/*/pallet; do [ -d "$d" ] && { rmdir "$d" 2>/dev/null || true; }; done
    true
}
trap cleanup EXIT

if [ "${NO_CGFIX:-0}" != 1 ] && [ -r /sys/fs/cgroup/unified/cgroup.controllers ]; then
    for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
        if ! awk '$3=="cgroup"{print $4}' /proc/mounts | tr ',' '\n' | grep -qx "$c"; then
            log "mounting the v1 '$c' hierarchy at /sys/fs/cgroup/$c for crun (left mounted)"
            mkdir -p "/sys/fs/cgroup/$c" && mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" || true
        fi
    done
fi

# one image for both: pallet's default busybox image, saved and loaded into podman's store
bash "$top/scripts/make-busybox-image.sh" --root "$work/pallet-root" >/dev/null
$PL save -o "$work/busybox.tar" busybox:latest >/dev/null
$P load -q -i "$work/busybox.tar" >/dev/null
$P image exists busybox:latest || die "podman could not load the image pallet saved"

# root here may lack CAP_SYS_RESOURCE: podman's default rlimits would then fail (shared/bench/README.md)
U=""
if ! awk '/^CapEff:/{c=strtonum("0x"$2); exit !(and(c, 2^24))}' /proc/self/status 2>/dev/null; then
    hn=$(ulimit -Hn); hu=$(ulimit -Hu); [ "$hu" = unlimited ] && hu=32768; [ "$hu" -gt 32768 ] && hu=32768
    U="--ulimit nofile=$hn:$hn --ulimit nproc=$hu:$hu"
fi
PR="$P run --rm $U --network none --runtime crun"
$PR busybox true || die "podman run failed"
$PL run --rm --runtime crun busybox true || die "pallet run (crun) failed"
$PL run --rm busybox true || die "pallet run (pallet-runtime) failed"

# the median over every round's runs of command $2 (files $1.*.json)
median() {
    jq -r --arg n "$2" '.results[] | select(.command==$n) | .times[]' "$1".*.json | sort -g |
        awk '{t[NR]=$1} END {m = (NR % 2) ? t[(NR+1)/2] : (t[NR/2] + t[NR/2+1]) / 2; printf "%.1f", m*1000}'
}
rounds() {  # NAME then hyperfine arguments: ROUNDS rounds into $work/NAME.<round>.json
    local name=$1 r
    shift
    for r in $(seq "$ROUNDS"); do
        hyperfine -N --style none --runs "$RUNS" --warmup "$WARMUP" --export-json "$work/$name.$r.json" "$@" >/dev/null
    done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

log "timing run --rm busybox true ($ROUNDS rounds of $RUNS runs each)"
rounds run \
    -n pallet+crun "$PL run --rm --runtime crun busybox true" \
    -n pallet+pallet-runtime "$PL run --rm busybox true" \
    -n podman+crun "$PR busybox true"

log "timing exec into a running container ($ROUNDS rounds of $RUNS runs each)"
pid_pallet=$($PL run -d --runtime crun busybox sleep 600)
pid_podman=$($P run -d $U --network none --runtime crun busybox sleep 600)
rounds exec \
    -n pallet+crun "$PL exec $pid_pallet true" \
    -n podman+crun "$P exec $pid_podman true"
$PL rm -f "$pid_pallet" >/dev/null
$P rm -f -t 0 "$pid_podman" >/dev/null

log "starting $N detached containers one after another, each engine"
start_all() {  # CMD... ; prints the elapsed ms
    local t0 t1
    t0=$(date +%s%N)
    for _ in $(seq "$N"); do "$@" >/dev/null; done
    t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
}
pss() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
rss() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
per_supervisor() {  # PATTERN: average RSS and PSS (KiB) of the processes whose command line matches
    local pids rss_sum=0 pss_sum=0 n=0 p
    pids=$(pgrep -f "$1" || true)
    for p in $pids; do rss_sum=$((rss_sum + $(rss "$p"))); pss_sum=$((pss_sum + $(pss "$p"))); n=$((n + 1)); done
    [ "$n" -gt 0 ] || { echo "0 0 0"; return; }
    echo "$n $((rss_sum / n)) $((pss_sum / n))"
}
ms_pallet=$(start_all $PL run -d --runtime crun busybox sleep 600)
sleep 1
read -r n_shim rss_shim pss_shim < <(per_supervisor "pallet-shim.*$work/pallet-root")
n_forked=$( (pgrep -f "pallet-shim --forked $work/pallet-root" || true) | wc -l)
zygote=$(cat "$work/pallet-run/shim-zygote.pid" 2>/dev/null || echo 0)
pss_zygote=0 rss_zygote=0
if [ "$zygote" -gt 0 ] && [ -r "/proc/$zygote/smaps_rollup" ]; then
    pss_zygote=$(pss "$zygote") rss_zygote=$(rss "$zygote")
fi
# per container: the shim's own PSS, plus its share of the zygote's (zygote PSS / N)
pss_total=$(( pss_shim + (n_shim > 0 ? pss_zygote / n_shim : 0) ))
ms_podman=$(start_all $P run -d $U --network none --runtime crun busybox sleep 600)
sleep 1
read -r n_conmon rss_conmon pss_conmon < <(per_supervisor "conmon.*$work/")
listed=$($PL ps -q | wc -l)
if [ "$listed" != "$N" ]; then  # say which did not stay up, and why
    $PL ps -a --no-trunc --format '{{.ID}} {{.Status}}' | grep -v ' Up ' >&2 || true
    for id in $($PL ps -a -q --no-trunc --filter status=exited); do
        echo "--- $id:" >&2; $PL logs --tail 5 "$id" >&2 || true
        cat "$work/pallet-run/containers/$id/shim.log" >&2 2>/dev/null || true
    done
fi

r_crun=$(median "$work/run" pallet+crun)
r_pr=$(median "$work/run" pallet+pallet-runtime)
r_podman=$(median "$work/run" podman+crun)
e_pallet=$(median "$work/exec" pallet+crun)
e_podman=$(median "$work/exec" podman+crun)

printf '\n%-38s %12s %12s %8s\n' case pallet podman ratio
printf '%-38s %10sms %10sms %8s\n' "run --rm true (crun)" "$r_crun" "$r_podman" "$(ratio "$r_crun" "$r_podman")"
printf '%-38s %10sms %10sms %8s\n' "run --rm true (pallet-runtime vs crun)" "$r_pr" "$r_podman" "$(ratio "$r_pr" "$r_podman")"
printf '%-38s %10sms %10sms %8s\n' "exec true (crun)" "$e_pallet" "$e_podman" "$(ratio "$e_pallet" "$e_podman")"
printf '%-38s %10sms %10sms %8s\n' "start $N detached, sequential" "$ms_pallet" "$ms_podman" "$(ratio "$ms_pallet" "$ms_podman")"
printf '%-38s %9sKiB %9sKiB %8s\n' "supervisor RSS per container" "$rss_shim" "$rss_conmon" "$(ratio "$rss_shim" "$rss_conmon")"
printf '%-38s %9sKiB %9sKiB %8s\n' "supervisor PSS per container" "$pss_total" "$pss_conmon" "$(ratio "$pss_total" "$pss_conmon")"
printf '%-38s %9sKiB %12s %8s\n' "  of which the shim's own PSS" "$pss_shim" "" ""
printf '%-38s %9sKiB %12s %8s\n' "  of which zygote PSS / $n_shim" "$(( n_shim > 0 ? pss_zygote / n_shim : 0 ))" "" ""
echo "($n_shim pallet-shim processes measured, $n_forked of them forked by the zygote (pid $zygote:" \
    "PSS ${pss_zygote}KiB, RSS ${rss_zygote}KiB, counted above as PSS/$n_shim per container)," \
    "the others exec'd; $n_conmon conmon processes; pallet ps lists $listed running containers)"
echo "(RSS counts every shared page whole in each process: the forked shims' RSS is mostly the zygote's pages)"
echo "(load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "SUMMARY engine: run-crun=${r_crun}ms run-pallet-runtime=${r_pr}ms podman-run-crun=${r_podman}ms" \
    "ratio=$(ratio "$r_crun" "$r_podman") exec=${e_pallet}ms podman-exec=${e_podman}ms" \
    "start$N=${ms_pallet}ms podman-start$N=${ms_podman}ms start-ratio=$(ratio "$ms_pallet" "$ms_podman")" \
    "shim-rss=${rss_shim}KiB shim-pss=${pss_total}KiB (own ${pss_shim} + zygote ${pss_zygote}/${n_shim}) forked=${n_forked}/${n_shim}" \
    "conmon-rss=${rss_conmon}KiB conmon-pss=${pss_conmon}KiB"
