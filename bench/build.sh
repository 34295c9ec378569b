#!/usr/bin/env bash
# bench/build.sh - `pallet build` beside `buildah bud`, same busybox base, same contexts, in one run.
#
#   (a) FROM busybox, ENV, RUN, COPY of 1,000 small files, RUN, CMD
#   (b) a three-stage build: two builder stages, the last stage copies from both
#
# Each Dockerfile is built cold (an empty build cache: before every timed run the built image
# and the whole build cache are removed, untimed, by hyperfine --prepare) and fully cached (the
# same build again, every step a cache hit). Prints the medians and the ratio pallet/buildah,
# and a SUMMARY line. Target (issue 11): pallet <= 0.5x buildah, cold and cached.
#
#   sudo bench/build.sh            RUNS=10 ROUNDS=3 WARMUP=1 by default
#
# The timings are taken in ROUNDS rounds of RUNS runs per command, the builders taking turns,
# and the median is over all of a command's runs (a slow spell of the machine falls on both).
# buildah runs as a user runs it: its default isolation (runc) and storage driver (overlay),
# --layers (a cache per step, as docker's builders keep one), -q. pallet builds with -q.
# Where a dockerd already runs (never started here), docker's legacy builder (DOCKER_BUILDKIT=0)
# is timed too, with its own images removed afterwards.
#
# Everything lives in a private temp dir (pallet --root/--run-root, buildah --root/--runroot,
# TMPDIR); the host's stores are not touched.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1}
FILES=${FILES:-1000}
PALLET_BIN=${PALLET:-$top/.venv/bin/pallet}

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || die "run as root"
for tool in buildah hyperfine jq busybox; do command -v "$tool" >/dev/null || die "missing $tool"; done
[ -x "$PALLET_BIN" ] || die "missing $PALLET_BIN (run scripts/install.sh)"

work=$(mktemp -d /tmp/pallet-bench-build.XXXXXX)
export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"
PL="$PALLET_BIN --root $work/pallet-root --run-root $work/pallet-run"
B="buildah --root $work/buildah-root --runroot $work/buildah-run --storage-driver overlay"
DOCKER=0
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then DOCKER=1; fi
TAGPREFIX="pallet-bench-build-$$"
cleanup() {
    set +e
    $PL ps -a -q --no-trunc 2>/dev/null | xargs -r $PL rm -f >/dev/null 2>&1
    local z
    z=$(cat "$work/pallet-run/shim-zygote.pid" 2>/dev/null)
    if [ -n "$z" ] && tr '\0' ' ' <"/proc/$z/cmdline" 2>/dev/null | grep -q -- "--zygote $work/pallet-run"; then
        kill -9 "$z" 2>/dev/null
    fi
    $B rm --all >/dev/null 2>&1
    $B rmi -a -f >/dev/null 2>&1
    if [ "$DOCKER" = 1 ]; then
        docker images -q --filter "reference=$TAGPREFIX-*" | xargs -r docker rmi -f >/dev/null 2>&1
    fi
    # whatever is still mounted under the temp dir (buildah's overlay, a killed build's rootfs)
    awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
    for d in /sys/fs/cgroup/*/pallet; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    true
}
trap cleanup EXIT

# one base image for all: pallet's default busybox image, saved and pulled into buildah's store
bash "$top/scripts/make-busybox-image.sh" --root "$work/pallet-root" >/dev/null
$PL save -o "$work/busybox.tar" busybox:latest
base=$($B pull -q "docker-archive:$work/busybox.tar" | tail -1)
$B tag "$base" docker.io/library/busybox:latest
if [ "$DOCKER" = 1 ]; then  # under a name of this run only: the dockerd's own busybox stays as it is
    $PL tag busybox:latest "$TAGPREFIX-base:latest"
    $PL save -o "$work/base-docker.tar" "$TAGPREFIX-base:latest"
    docker load -q -i "$work/base-docker.tar" >/dev/null
fi

# (a): ENV, RUN, COPY of $FILES small files, RUN, CMD
a=$work/ctx-a
mkdir -p "$a/files"
for i in $(seq -w 1 "$FILES"); do echo "small file $i" > "$a/files/f$i.txt"; done
cat > "$a/Dockerfile" <<'EOF'
FROM busybox
ENV APP=/app
RUN mkdir -p $APP && echo prepared > $APP/prepared
COPY files/ /app/files/
RUN ls /app/files | wc -l > /app/count
CMD ["cat", "/app/count"]
EOF
# (b): three stages
b=$work/ctx-b
mkdir -p "$b/src"
for i in $(seq -w 1 50); do echo "source $i" > "$b/src/s$i.txt"; done
cat > "$b/Dockerfile" <<'EOF'
FROM busybox AS deps
RUN mkdir -p /deps && for i in 1 2 3 4 5; do echo "dep $i" > /deps/dep$i; done

FROM busybox AS build
COPY src/ /src/
RUN cat /src/*.txt > /build.out

FROM busybox
COPY --from=deps /deps /opt/deps
COPY --from=build /build.out /opt/build.out
CMD ["cat", "/opt/build.out"]
EOF

# sanity: every builder builds both, and the images run where we can run them
for ctx in a b; do
    $PL build -q -t "bench-$ctx:1" "$work/ctx-$ctx" >/dev/null || die "pallet build ($ctx) failed"
    $B bud --layers --pull=never -q -t "bench-$ctx:1" "$work/ctx-$ctx" >/dev/null || die "buildah bud ($ctx) failed"
    if [ "$DOCKER" = 1 ]; then
        sed "s/^FROM busybox/FROM $TAGPREFIX-base/" "$work/ctx-$ctx/Dockerfile" > "$work/ctx-$ctx/Dockerfile.docker"
        DOCKER_BUILDKIT=0 docker build -q -t "$TAGPREFIX-$ctx:1" -f "$work/ctx-$ctx/Dockerfile.docker" \
            "$work/ctx-$ctx" >/dev/null || die "docker build ($ctx) failed"
    fi
done
[ "$($PL run --rm bench-a:1)" = "$FILES" ] || die "pallet's image (a) does not count $FILES files"

median() {  # the median in ms over every round's runs of command $2 (files $1.*.json)
    jq -r --arg n "$2" '.results[] | select(.command==$n) | .times[]' "$1".*.json | sort -g |
        awk '{t[NR]=$1} END {m = (NR % 2) ? t[(NR+1)/2] : (t[NR/2] + t[NR/2+1]) / 2; printf "%.1f", m*1000}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

timed() {  # NAME CTX cold|cached: ROUNDS rounds of hyperfine, builders interleaved, into $work/NAME.<r>.json
    local name=$1 ctx=$2 mode=$3 r
    local pl_cmd="$PL build -q -t bench-$ctx:1 $work/ctx-$ctx"
    local bh_cmd="$B bud --layers --pull=never -q -t bench-$ctx:1 $work/ctx-$ctx"
    local dk_cmd="env DOCKER_BUILDKIT=0 docker build -q -t $TAGPREFIX-$ctx:1 -f $work/ctx-$ctx/Dockerfile.docker $work/ctx-$ctx"
    local args=(-n pallet "$pl_cmd" -n buildah "$bh_cmd")
    [ "$DOCKER" = 1 ] && args+=(-n docker "$dk_cmd")
    local prep=()
    if [ "$mode" = cold ]; then
        # empty build caches, untimed: the image and every cached step gone (the base image stays)
        prep=(--prepare "sh -c '$PL rmi -f bench-$ctx:1 >/dev/null 2>&1; $PL builder prune -a -f >/dev/null'"
              --prepare "sh -c '$B rmi -f bench-$ctx:1 >/dev/null 2>&1; $B rmi --prune >/dev/null 2>&1; true'")
        [ "$DOCKER" = 1 ] && prep+=(--prepare "sh -c 'docker rmi -f $TAGPREFIX-$ctx:1 >/dev/null 2>&1; docker image prune -f >/dev/null'")
    fi
    for r in $(seq "$ROUNDS"); do
        hyperfine -N --style none --runs "$RUNS" --warmup "$WARMUP" "${prep[@]}" \
            --export-json "$work/$name.$r.json" "${args[@]}" >/dev/null
    done
}

declare -A P BH DK
for ctx in a b; do
    for mode in cold cached; do
        log "timing ($ctx) $mode ($ROUNDS rounds of $RUNS runs each)"
        timed "$ctx-$mode" "$ctx" "$mode"
        P[$ctx-$mode]=$(median "$work/$ctx-$mode" pallet)
        BH[$ctx-$mode]=$(median "$work/$ctx-$mode" buildah)
        DK[$ctx-$mode]=$([ "$DOCKER" = 1 ] && median "$work/$ctx-$mode" docker || echo n/a)
    done
done

printf '\n%-34s %10s %10s %8s %10s\n' case pallet buildah ratio docker
summary="SUMMARY build:"
for ctx in a b; do
    for mode in cold cached; do
        k=$ctx-$mode
        label="($ctx) $([ "$ctx" = a ] && echo "ENV RUN COPY×$FILES RUN CMD" || echo "three stages"), $mode"
        printf '%-34s %8sms %8sms %8s %10s\n' "$label" "${P[$k]}" "${BH[$k]}" "$(ratio "${P[$k]}" "${BH[$k]}")" "${DK[$k]}"
        summary+=" $k=${P[$k]}ms buildah-$k=${BH[$k]}ms ratio-$k=$(ratio "${P[$k]}" "${BH[$k]}")"
    done
done
echo "(cold: image and build cache removed before each run, untimed; cached: every step a cache hit)"
echo "(docker: $([ "$DOCKER" = 1 ] && echo "legacy builder of the running dockerd" || echo "no dockerd runs here; not timed"))"
echo "(load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "$summary"
