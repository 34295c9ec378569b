#!/usr/bin/env bash
# bench/network.sh - networks: pallet beside docker, same busybox image, interleaved, in one run.
#
#   1. `run --rm busybox true` on the default bridge and with `--network none`, pallet and docker
#      (hyperfine, the four commands taking turns): the ratio pallet/docker on the bridge (target
#      <= 0.35) and the ratio of what the bridge adds to each (bridge - none; target <= 0.5)
#   2. 20 containers started on one user network, then from each one a lookup of all 20 names
#      (busybox nslookup), then removed: the whole, pallet vs docker, ROUNDS2 rounds taking turns
#   3. a 100 MB download through a published port, host -> container: busybox httpd serving a
#      100 MB file from a tmpfs, GNU wget on the host from 127.0.0.1 (hyperfine, taking turns):
#      throughput, pallet vs docker (target >= 1.0x)
#
#   sudo bench/network.sh      RUNS=10 ROUNDS=3 WARMUP=2 ROUNDS2=3 SIZE_MB=100 by default
#
# docker is a private dockerd (only if dockerd is installed; NO_DOCKER=1 skips it): its own
# data-root, exec-root, pidfile and socket in the temp dir, a private bridge the script makes
# (never --bridge=none) on a free 10.x /24, docker's defaults otherwise (iptables rules, the
# userland proxy for 127.0.0.1). Its iptables chains are removed at the end where the script's
# dockerd made them (tables that did not exist before are deleted whole; otherwise the rules
# naming its bridge). It is stopped by its pid.
#
# pallet works on a private --root/--run-root; its default network's bridge and nftables table
# (named for the root) are removed at the end, as is every container and network made here.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
ROUNDS2=${ROUNDS2:-3}
SIZE_MB=${SIZE_MB:-100}
N=20
PALLET_BIN=${PALLET:-$top/.venv/bin/pallet}
PY=$top/.venv/bin/python

die() { echo "network.sh: $*" >&2; exit 1; }
log() { echo "network.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || die "run as root"
for tool in hyperfine jq busybox wget nft ip; do command -v "$tool" >/dev/null || die "missing $tool"; done
[ -x "$PALLET_BIN" ] || die "missing $PALLET_BIN (run scripts/install.sh)"

work=$(mktemp -d /tmp/pallet-bench-network.XXXXXX)
PL="$PALLET_BIN --root $work/pallet-root --run-root $work/pallet-run"
tag=$(cd "$top" && $PY -c 'import sys; from pallet.network.driver import root_tag; print(root_tag(sys.argv[1]))' "$work/pallet-root")
suffix=$(printf '%04x' $((RANDOM)))
subnet() { (cd "$top" && $PY -c 'import sys; from pallet.testing.hostnet import free_subnet; print(free_subnet(int(sys.argv[1]), tuple(sys.argv[2:])))' "$@"); }

docker_ok=0 dpid="" DK="" dbridge="pbd$suffix" tables_before="" dsubnets=""
pallet_bridge=""
cleanup() {
    set +e
    $PL ps -a -q --no-trunc 2>/dev/null | xargs -r $PL rm -f >/dev/null 2>&1
    $PL network rm pbnet >/dev/null 2>&1
    local z
    z=$(cat "$work/pallet-run/shim-zygote.pid" 2>/dev/null)
    if [ -n "$z" ] && tr '\0' ' ' <"/proc/$z/cmdline" 2>/dev/null | grep -q -- "--zygote $work/pallet-run"; then
        kill -9 "$z" 2>/dev/null
    fi
    # what still names pallet's root or run dir (the networks' resolvers): by pid
    for p in /proc/[0-9]*; do
        if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "$work/pallet-"; then kill -9 "${p#/proc/}" 2>/dev/null; fi
    done
    [ -n "$pallet_bridge" ] && ip link del "$pallet_bridge" 2>/dev/null
    ip link del "pbp$suffix" 2>/dev/null
    nft delete table inet "pallet-$tag" 2>/dev/null
    if [ -n "$dpid" ]; then
        $DK ps -a -q 2>/dev/null | xargs -r $DK rm -f >/dev/null 2>&1
        $DK network rm dbnet >/dev/null 2>&1
        kill "$dpid" 2>/dev/null
        # it stops containerd and the shims first: give it time before SIGKILL
        for _ in $(seq 600); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$dpid" 2>/dev/null
        ip link del "$dbridge" 2>/dev/null
        ip link del "pbd${suffix}n" 2>/dev/null
        iptables_cleanup
    fi
    for d in /sys/fs/cgroup/*/pallet; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    # whatever is still mounted below the temp dir (docker's netns files, overlays), deepest first
    awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
    rm -rf "$work"
    true
}
# docker's chains and rules: whole tables the private dockerd made, else the rules naming its bridges
iptables_cleanup() {
    local t
    for t in "ip nat" "ip filter" "ip6 nat" "ip6 filter"; do
        if ! grep -qx "table $t" <<<"$tables_before" && nft list table $t >/dev/null 2>&1; then
            nft delete table $t 2>/dev/null
        fi
    done
    command -v iptables >/dev/null || return 0
    # the rules naming its bridges, or an address of its /24s (a published port's masquerade)
    local pattern="$dbridge|pbd${suffix}n" s
    for s in $dsubnets; do pattern="$pattern|(^| )${s%.0/24}.[0-9]+(/[0-9]+)?( |$)"; done
    pattern=${pattern//./\\.}
    for t in nat filter; do
        iptables -t "$t" -S 2>/dev/null | grep '^-A ' | grep -E -- "$pattern" | sed 's/^-A /-D /' | while read -r rule; do
            eval iptables -t "$t" "$rule" 2>/dev/null
        done
    done
}
trap cleanup EXIT

if [ "${NO_CGFIX:-0}" != 1 ] && [ -r /sys/fs/cgroup/unified/cgroup.controllers ]; then
    for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
        if ! awk '$3=="cgroup"{print $4}' /proc/mounts | tr ',' '\n' | grep -qx "$c"; then
            mkdir -p "/sys/fs/cgroup/$c" && mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" || true
        fi
    done
fi

bash "$top/scripts/make-busybox-image.sh" --root "$work/pallet-root" >/dev/null
$PL run --rm busybox true || die "pallet run failed"
pallet_bridge=$($PL network inspect bridge | jq -r '.[0].Options["com.docker.network.bridge.name"]')

# --- the private dockerd ----------------------------------------------------------------------
if [ "${NO_DOCKER:-0}" != 1 ] && command -v dockerd >/dev/null && command -v docker >/dev/null; then
    D=$work/docker
    mkdir -p "$D"
    echo '{}' >"$D/daemon.json"
    tables_before=$(nft list tables)
    dnet=$(subnet 255)
    dsubnets=$dnet
    ip link add "$dbridge" type bridge
    ip addr add "${dnet%.0/24}.1/24" dev "$dbridge"
    ip link set "$dbridge" up
    dockerd --config-file "$D/daemon.json" --data-root "$D/data" --exec-root "$D/exec" \
        --pidfile "$D/dockerd.pid" -H "unix://$D/docker.sock" --bridge "$dbridge" \
        >"$D/dockerd.log" 2>&1 &
    dpid=$!
    DK="docker -H unix://$D/docker.sock"
    for _ in $(seq 150); do $DK version >/dev/null 2>&1 && break; sleep 0.2; done
    if $DK version >/dev/null 2>&1; then
        $PL save -o "$work/busybox.tar" busybox:latest
        $DK load -q -i "$work/busybox.tar" >/dev/null
        $DK run --rm busybox true && $DK run --rm --network none busybox true && docker_ok=1
    else
        log "dockerd did not come up; tail of its log:"
        tail -5 "$D/dockerd.log" >&2
    fi
fi
[ $docker_ok = 1 ] || log "no docker: pallet's figures only"

median() {  # the median over every round's runs of command $2 (files $1.*.json), in ms
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
minus() { awk -v a="$1" -v b="$2" 'BEGIN{ printf "%.1f", a - b }'; }
med() { sort -g | awk '{t[NR]=$1} END {m = (NR % 2) ? t[(NR+1)/2] : (t[NR/2] + t[NR/2+1]) / 2; printf "%.1f", m}'; }

# --- 1. run --rm true, bridge and none ----------------------------------------------------------
log "timing run --rm busybox true, bridge and none ($ROUNDS rounds of $RUNS runs each)"
cases=(-n pallet-bridge "$PL run --rm busybox true" -n pallet-none "$PL run --rm --network none busybox true")
if [ $docker_ok = 1 ]; then
    cases+=(-n docker-bridge "$DK run --rm busybox true" -n docker-none "$DK run --rm --network none busybox true")
fi
rounds run "${cases[@]}"

# --- 2. 20 containers on a user network, every name from each -------------------------------------
names=$(seq -s ' ' -f 'r%g' 0 $((N - 1)))
lookups="for n in $names; do nslookup \$n >/dev/null || { echo \"no \$n\" >&2; exit 1; }; done"
scale_round() {  # ENGINE-CLI: prints the elapsed ms of start N + lookups from each + rm
    local cli=$1 t0 t1 n
    t0=$(date +%s%N)
    for n in $names; do $cli run -d --name "$n" --network "$2" busybox sleep 600 >/dev/null; done
    for n in $names; do $cli exec "$n" sh -c "$lookups"; done
    # shellcheck disable=SC2086
    $cli rm -f $names >/dev/null
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}
log "20 containers on one network, all names from each ($ROUNDS2 rounds, taking turns)"
$PL network create --subnet "$(subnet 255)" -o "com.docker.network.bridge.name=pbp$suffix" pbnet >/dev/null
if [ $docker_ok = 1 ]; then
    dnet2=$(subnet 255 "$dnet")
    dsubnets="$dsubnets $dnet2"
    $DK network create --subnet "$dnet2" -o "com.docker.network.bridge.name=pbd${suffix}n" dbnet >/dev/null
fi
scale_pallet=() scale_docker=()
for _ in $(seq "$ROUNDS2"); do
    scale_pallet+=("$(scale_round "$PL" pbnet)")
    [ $docker_ok = 1 ] && scale_docker+=("$(scale_round "$DK" dbnet)")
done

# --- 3. 100 MB through a published port ---------------------------------------------------------
log "downloading ${SIZE_MB} MB through a published port ($ROUNDS rounds of $RUNS runs each)"
serve="dd if=/dev/zero of=/www/big bs=1M count=$SIZE_MB 2>/dev/null && touch /www/ready && exec httpd -f -p 80 -h /www"
port_of() { "$@" | head -1 | sed 's/.*://'; }
$PL run -d --name big --tmpfs /www -p 127.0.0.1::80 busybox sh -c "$serve" >/dev/null
pport=$(port_of $PL port big 80)
for _ in $(seq 300); do wget -q -O /dev/null "http://127.0.0.1:$pport/ready" 2>/dev/null && break; sleep 0.1; done
dl=(-n pallet-download "wget -q -O /dev/null http://127.0.0.1:$pport/big")
if [ $docker_ok = 1 ]; then
    $DK run -d --name big --tmpfs /www -p 127.0.0.1::80 busybox sh -c "$serve" >/dev/null
    dport=$(port_of $DK port big 80)
    for _ in $(seq 300); do wget -q -O /dev/null "http://127.0.0.1:$dport/ready" 2>/dev/null && break; sleep 0.1; done
    dl+=(-n docker-download "wget -q -O /dev/null http://127.0.0.1:$dport/big")
fi
rounds download "${dl[@]}"

# --- figures -------------------------------------------------------------------------------------
pb=$(median "$work/run" pallet-bridge)
pn=$(median "$work/run" pallet-none)
p_scale=$(printf '%s\n' "${scale_pallet[@]}" | med)
p_dl=$(median "$work/download" pallet-download)
mbps() { awk -v ms="$1" -v mb="$SIZE_MB" 'BEGIN{ if (ms > 0) printf "%.0f", mb / (ms / 1000); else print "n/a" }'; }
db=n/a dn=n/a d_scale=n/a d_dl=n/a
if [ $docker_ok = 1 ]; then
    db=$(median "$work/run" docker-bridge)
    dn=$(median "$work/run" docker-none)
    d_scale=$(printf '%s\n' "${scale_docker[@]}" | med)
    d_dl=$(median "$work/download" docker-download)
fi
p_cost=$(minus "$pb" "$pn")
d_cost=n/a
[ $docker_ok = 1 ] && d_cost=$(minus "$db" "$dn")

printf '\n%-44s %12s %12s %8s\n' case pallet docker ratio
printf '%-44s %10sms %10sms %8s\n' "run --rm true, default bridge" "$pb" "$db" "$(ratio "$pb" "$db")"
printf '%-44s %10sms %10sms %8s\n' "run --rm true, --network none" "$pn" "$dn" "$(ratio "$pn" "$dn")"
printf '%-44s %10sms %10sms %8s\n' "what the bridge adds (bridge - none)" "$p_cost" "$d_cost" "$(ratio "$p_cost" "$d_cost")"
printf '%-44s %10sms %10sms %8s\n' "$N on one network, all names from each, rm" "$p_scale" "$d_scale" "$(ratio "$p_scale" "$d_scale")"
printf '%-44s %10sms %10sms %8s\n' "${SIZE_MB} MB via a published port (127.0.0.1)" "$p_dl" "$d_dl" "$(ratio "$p_dl" "$d_dl")"
printf '%-44s %8sMB/s %8sMB/s %8s\n' "  throughput (docker/pallet time: >= 1 wins)" "$(mbps "$p_dl")" "$(mbps "$d_dl")" "$(ratio "$d_dl" "$p_dl")"
echo "(scale rounds, ms: pallet ${scale_pallet[*]}; docker ${scale_docker[*]:-n/a})"
echo "(load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "SUMMARY network: run-bridge=${pb}ms docker-run-bridge=${db}ms ratio=$(ratio "$pb" "$db")" \
    "run-none=${pn}ms docker-run-none=${dn}ms bridge-cost=${p_cost}ms docker-bridge-cost=${d_cost}ms" \
    "cost-ratio=$(ratio "$p_cost" "$d_cost") scale$N=${p_scale}ms docker-scale$N=${d_scale}ms" \
    "scale-ratio=$(ratio "$p_scale" "$d_scale") download=${p_dl}ms docker-download=${d_dl}ms" \
    "throughput-ratio=$(ratio "$d_dl" "$p_dl")"
