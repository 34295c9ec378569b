#!/usr/bin/env bash
# bench/registry.sh - registry push and pull of a ~200 MB, 5-layer image over loopback.
#
# Two registries on 127.0.0.1, each with its own temp storage, started once per run:
#   docker-registry   Debian's distribution 2.8 (config as in shared/bench/peers/03-registry.sh)
#   pallet            pallet registry serve
# The image: busybox + 4 layers of LAYER_MB MiB random data (1 MiB files), gzip'd by umoci.
# Server cases (the client is skopeo in each, so the servers are compared):
#   push-skopeo-dreg / push-skopeo-pallet   skopeo copy oci: -> docker:// (storage emptied first)
#   pull-skopeo-dreg / pull-skopeo-pallet   skopeo copy docker:// -> oci: (target emptied first)
# Prints medians, the servers' RSS after the runs, and the ratios pallet-server/docker-registry
# (target <= 1.0: pallet's server at least as fast).
#
# Adding cases (the pallet pull/push client): `add_case NAME PREPARE COMMAND` before
# "run the cases", and `add_ratio LABEL CASE_NUM CASE_DEN` for each ratio to print.
# Knobs: RUNS (5), WARMUP (1), LAYER_MB (50), ONLY=REGEX (time only matching cases), KEEP=1,
# ROUNDS (1): ROUNDS passes of RUNS runs per case, alternating the case order, medians over all
# runs; on a shared machine ROUNDS=9 RUNS=1 interleaves the servers so load drifts hit both.
# Usage: bench/registry.sh
set -euo pipefail
RUNS=${RUNS:-5}
ROUNDS=${ROUNDS:-1}
WARMUP=${WARMUP:-1}
LAYER_MB=${LAYER_MB:-50}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PALLET=$REPO/.venv/bin/pallet

log() { printf '[registry.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for t in hyperfine skopeo umoci docker-registry busybox curl jq python3; do
  command -v "$t" >/dev/null || die "missing tool: $t"
done
[ -x "$PALLET" ] || die "no pallet launcher at $PALLET (run scripts/install.sh)"

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/pallet-bench-registry.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log "work dir: $WORK"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# --- the image -------------------------------------------------------------------------
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
for a in sh ls cat true; do ln -s busybox "$WORK/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$WORK/rootfs/etc/passwd"
L=$WORK/oci
umoci init --layout "$L" && umoci new --image "$L:latest"
umoci insert --image "$L:latest" "$WORK/rootfs" /
for n in 1 2 3 4; do
  d=$WORK/payload$n/data$n
  mkdir -p "$d"
  for ((i = 1; i <= LAYER_MB; i++)); do head -c 1048576 /dev/urandom >"$d/f$i.bin"; done
  umoci insert --image "$L:latest" "$d" "/data$n"
  rm -rf "$WORK/payload$n"
done
umoci config --image "$L:latest" --config.cmd /bin/sh
umoci gc --layout "$L"
log "image: $(du -sh "$L/blobs" | cut -f1) in $(jq '.layers | length' "$L/blobs/sha256/$(jq -r '.manifests[0].digest' "$L/index.json" | cut -d: -f2)") layers"

# --- the registries ----------------------------------------------------------------------
wait_up() {
  local i
  for i in $(seq 100); do curl -sf "$1/v2/" >/dev/null && return 0; sleep 0.1; done
  die "registry at $1 did not start: $(tail -3 "$2")"
}
dport=$(free_port)
cat >"$WORK/dreg.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/dreg
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$dport
YML
docker-registry serve "$WORK/dreg.yml" >"$WORK/dreg.log" 2>&1 &
DPID=$!; PIDS+=("$DPID")
wait_up "http://127.0.0.1:$dport" "$WORK/dreg.log"

pport=$(free_port)
"$PALLET" registry serve --addr "127.0.0.1:$pport" --storage "$WORK/preg" >"$WORK/preg.log" 2>&1 &
PPID_=$!; PIDS+=("$PPID_")
wait_up "http://127.0.0.1:$pport" "$WORK/preg.log"
DREG=docker://127.0.0.1:$dport/bench/big:latest
PREG=docker://127.0.0.1:$pport/bench/big:latest

# --- cases -------------------------------------------------------------------------------
CASES=()
declare -A PREP CMD
RATIOS=()
add_case() { CASES+=("$1"); PREP[$1]=$2; CMD[$1]=$3; }
add_ratio() { RATIOS+=("$1|$2|$3"); }

SK="skopeo copy -q --dest-tls-verify=false --src-tls-verify=false"
add_case push-skopeo-dreg "rm -rf $WORK/dreg/docker" "$SK oci:$L:latest $DREG"
add_case pull-skopeo-dreg "rm -rf $WORK/pulled" "$SK $DREG oci:$WORK/pulled:latest"
add_case push-skopeo-pallet "rm -rf $WORK/preg/blobs $WORK/preg/repositories $WORK/preg/uploads" "$SK oci:$L:latest $PREG"
add_case pull-skopeo-pallet "rm -rf $WORK/pulled" "$SK $PREG oci:$WORK/pulled:latest"
add_ratio "server push: pallet/docker-registry" push-skopeo-pallet push-skopeo-dreg
add_ratio "server pull: pallet/docker-registry" pull-skopeo-pallet pull-skopeo-dreg

# --- client cases (pallet pull / push; the registry client) -------------------------------
# pull-pallet-*: `pallet pull` into an empty private root until the image is unpacked (runnable);
# pull-podman-dreg: `podman pull` into an empty private store (overlay), as in
# shared/bench/peers/06-pull-anchors.sh; push-pallet-*: `pallet push` of the same image from a
# store that pulled it before (the registry's storage emptied first).
# Ratios: pallet pull / podman pull (target <= 0.9), pallet pull (unpacked) / skopeo copy
# (download only), pallet push / skopeo push (target < 1).
DREF=127.0.0.1:$dport/bench/big:latest
PREF=127.0.0.1:$pport/bench/big:latest
$SK "oci:$L:latest" "$DREG" && $SK "oci:$L:latest" "$PREG"
"$PALLET" --root "$WORK/push-dreg" pull -q "$DREF" >/dev/null
"$PALLET" --root "$WORK/push-preg" pull -q "$PREF" >/dev/null
# an initialised, empty store (podman's case keeps its initialised store too): the first open of a
# root probes the snapshot driver, a one-time cost that is not part of a pull
mkdir -p "$WORK/bin"
"$PALLET" --root "$WORK/proot-empty" images >/dev/null
printf '#!/bin/sh\nrm -rf %s && cp -a %s %s\n' "$WORK/proot" "$WORK/proot-empty" "$WORK/proot" >"$WORK/bin/reset-pallet"
chmod +x "$WORK/bin/reset-pallet"
add_case pull-pallet-dreg "$WORK/bin/reset-pallet" "$PALLET --root $WORK/proot pull -q $DREF"
if command -v podman >/dev/null; then
  PD=$WORK/podman
  PR=$(mktemp -d /tmp/prr.XXXXXX)  # podman refuses a runroot longer than 50 characters
  P="podman --root $PD/root --runroot $PR --tmpdir $PD/tmp --storage-driver overlay --cgroup-manager cgroupfs --events-backend file"
  printf '#!/bin/sh\n%s rmi -af >/dev/null 2>&1; exit 0\n' "$P" >"$WORK/bin/reset-podman"
  chmod +x "$WORK/bin/reset-podman"
  trap '"$WORK/bin/reset-podman"; umount -R "$PD/root/overlay" 2>/dev/null || true; rm -rf "$PR"; cleanup' EXIT
  add_case pull-podman-dreg "$WORK/bin/reset-podman" "$P pull -q --tls-verify=false $DREF"
  add_ratio "client pull (unpacked): pallet/podman, docker-registry" pull-pallet-dreg pull-podman-dreg
fi
add_ratio "client pull: pallet (unpacked)/skopeo (download only), docker-registry" pull-pallet-dreg pull-skopeo-dreg
add_case push-pallet-dreg "rm -rf $WORK/dreg/docker" "$PALLET --root $WORK/push-dreg push -q $DREF"
add_ratio "client push: pallet/skopeo, docker-registry" push-pallet-dreg push-skopeo-dreg
add_case pull-pallet-pallet "$WORK/bin/reset-pallet" "$PALLET --root $WORK/proot pull -q $PREF"
add_ratio "client pull: pallet (unpacked)/skopeo (download only), pallet server" pull-pallet-pallet pull-skopeo-pallet
add_case push-pallet-pallet "rm -rf $WORK/preg/blobs $WORK/preg/repositories $WORK/preg/uploads" "$PALLET --root $WORK/push-preg push -q $PREF"
add_ratio "client push: pallet/skopeo, pallet server" push-pallet-pallet push-skopeo-pallet

# --- run the cases -------------------------------------------------------------------------
if [ -n "${ONLY:-}" ]; then  # ONLY=REGEX: time only the matching cases (and their ratios)
  kept=(); for c in "${CASES[@]}"; do [[ $c =~ $ONLY ]] && kept+=("$c"); done; CASES=("${kept[@]}")
fi
log "timing ${#CASES[@]} cases, $RUNS runs each in each of $ROUNDS rounds"
for ((r = 1; r <= ROUNDS; r++)); do
  order=("${CASES[@]}")
  if (((ROUNDS - r) % 2)); then  # reversed every other round; the last round runs in order
    order=(); for ((i = ${#CASES[@]} - 1; i >= 0; i--)); do order+=("${CASES[$i]}"); done
  fi
  args=()
  for c in "${order[@]}"; do args+=(--prepare "${PREP[$c]}" -n "$c" "${CMD[$c]}"); done
  hyperfine --style basic -N --runs "$RUNS" --warmup "$((r == 1 ? WARMUP : 0))" \
    --export-json "$WORK/hf-$r.json" "${args[@]}" >&2
done
if [[ " ${CASES[*]} " == *" pull-skopeo-pallet "* ]]; then  # its copy is the last in $WORK/pulled
  cmp -s <(cd "$L/blobs" && find . -type f -exec sha256sum {} + | sort) \
    <(cd "$WORK/pulled/blobs" && find . -type f -exec sha256sum {} + | sort) \
    || die "the image pulled from pallet's server differs from the one pushed"
fi

median() {  # over the runs of every round
  jq -rs --arg n "$1" '[.[].results[] | select(.command==$n) | .times[]] | sort
    | if length == 0 then empty else (.[(length - 1) / 2 | floor] + .[length / 2 | floor]) / 2 * 1000 end' \
    "$WORK"/hf-*.json | awk 'NF{printf "%.1f", $1}'
}
printf '\n%-24s %10s\n' case "median ms"
for c in "${CASES[@]}"; do printf '%-24s %10s\n' "$c" "$(median "$c")"; done
echo "server RSS after runs: docker-registry $(rss_kib "$DPID") KiB, pallet $(rss_kib "$PPID_") KiB"
summary="SUMMARY registry:"
for r in "${RATIOS[@]}"; do
  IFS='|' read -r label num den <<<"$r"
  [ -n "$(median "$num")" ] && [ -n "$(median "$den")" ] || continue
  ratio=$(awk -v a="$(median "$num")" -v b="$(median "$den")" 'BEGIN{printf "%.2f", a/b}')
  echo "$label = $ratio"
  summary+=" ${num}/${den}=$ratio"
done
echo "$summary"
