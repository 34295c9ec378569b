#!/usr/bin/env bash
# bench/image.sh - image benchmarks: pallet against its peers, same work, one run.
#
# Part "unpack": a local ~200 MB, 5-layer OCI image (gzip'd GNU tar layers):
#   1 busybox rootfs; 2 SMALL_FILES files of 0.25-16 KiB (half text, half random, 100 a dir);
#   3 4 MiB random files; 4 one big random file; 5 1 MiB random files + 1 MiB text files.
# Cases, each from an empty target (hyperfine --prepare removes it):
#   pallet          python -m pallet.image.extract: the layers in order into one rootfs,
#                   whiteouts applied, diff ids and blob digests computed
#   pallet-layers   the same, each layer into its own dir, layers in parallel threads
#                   (what an overlay snapshotter stores)
#   umoci           umoci unpack (one rootfs, layers in order, plus its mtree manifest)
#   tar             parallel `tar -xzf`, one per layer into its own dir (no digests)
# Rounds are interleaved (one run of each case per round, rotating order); prints medians over
# rounds and medians of per-round ratios: pallet/umoci (target < 1), pallet-layers/tar (<= 1.1),
# and each case's CPU time (user+sys, median): wall times swing when other work loads the VM.
# Part "archives": save/load against skopeo copy, run from bench/image-archive.sh at the end
# (ARCHIVES=0 skips it).
# Knobs: RUNS (10), WARMUP (1), SIZE_MB (200), SMALL_FILES (3000), KEEP=1 (keep the work dir).
# Usage: sudo bench/image.sh      (root: umoci and tar keep owners; device nodes)
set -euo pipefail
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
SIZE_MB=${SIZE_MB:-200}
SMALL_FILES=${SMALL_FILES:-3000}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=$REPO/.venv/bin/python

log() { printf '[image.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
for t in hyperfine umoci tar gzip busybox python3 jq; do command -v "$t" >/dev/null || die "missing tool: $t"; done
[ -x "$PY" ] || die "no venv at $REPO/.venv (run scripts/install.sh)"

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/pallet-bench-image.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
log "work dir: $WORK"

# --- the image -------------------------------------------------------------------------
# gen KIND DIR N [KiB]: random DIR N KiB | small DIR N | text DIR N (1 MiB each); seeded, repeatable
gen() {
  python3 - "$@" <<'PY'
import os, random, sys
kind, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(d, exist_ok=True)
rnd = random.Random(4)
words = ["".join(rnd.choice("etaoinshrdlucmfwypvbgkq") for _ in range(rnd.randint(2, 9))) for _ in range(3000)]
def text(size):
    out, total = [], 0
    while total < size:
        line = " ".join(rnd.choices(words, k=rnd.randint(4, 12))) + "\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]
for i in range(n):
    if kind == "random":
        data, name = os.urandom(int(sys.argv[4]) * 1024), f"{d}/r{i:04d}.bin"
    elif kind == "text":
        data, name = text(1 << 20), f"{d}/t{i:04d}.txt"
    else:
        sub = f"{d}/d{i // 100:03d}"
        os.makedirs(sub, exist_ok=True)
        size = rnd.randint(256, 16384)
        data, name = (os.urandom(size), f"{sub}/f{i:05d}.bin") if i % 2 else (text(size), f"{sub}/f{i:05d}.txt")
    with open(name, "wb") as f:
        f.write(data)
PY
}
layer() { # layer OUT DIR: gzip'd GNU tar of DIR's contents, sorted, root-owned, fixed mtime
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2020-01-01 00:00Z' \
    -C "$2" -cf - $(ls -A "$2") | gzip -n >"$1"
}
log "building a ${SIZE_MB} MB image (5 layers, ${SMALL_FILES} small files)"
src=$WORK/src
mkdir -p "$src"/{base,small,chunks,big,mixed} "$WORK/layers"
bb=$(command -v busybox)
mkdir -p "$src/base"/{bin,etc,dev,proc,sys,tmp,root}
cp "$bb" "$src/base/bin/busybox"
chroot "$src/base" /bin/busybox --install -s /bin
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$src/base/etc/passwd"
printf 'root:x:0:\n' >"$src/base/etc/group"
chmod 1777 "$src/base/tmp"
small_mb=$((SMALL_FILES * 8 / 1024))
rest=$((SIZE_MB - 2 - small_mb)); [ "$rest" -ge 12 ] || die "SIZE_MB too small for SMALL_FILES"
n4=$((rest * 3 / 8 / 4)); big=$((rest * 3 / 8)); mix=$((rest - n4 * 4 - big))
gen small "$src/small/small" "$SMALL_FILES"
gen random "$src/chunks/chunks" "$n4" 4096
gen random "$src/big/big" 1 $((big * 1024))
gen random "$src/mixed/mixed" $((mix / 2)) 1024
gen text "$src/mixed/mixed/text" $((mix - mix / 2))
LAYERS=()
for l in base small chunks big mixed; do layer "$WORK/layers/$l.tgz" "$src/$l"; LAYERS+=("$WORK/layers/$l.tgz"); done
RAW=$(du -scb "$src" | tail -1 | cut -f1)
rm -rf "$src"

# OCI layout for umoci: the same blobs, a config with their diff ids, a manifest, index.json.
python3 - "$WORK/img" "${LAYERS[@]}" <<'PY'
import gzip, hashlib, json, os, sys
lay, layers = sys.argv[1], sys.argv[2:]
blobs = os.path.join(lay, "blobs", "sha256")
os.makedirs(blobs)
def put(data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
descs, diff_ids = [], []
for path in layers:
    tar, blob = hashlib.sha256(), hashlib.sha256()
    with gzip.open(path) as f:
        while chunk := f.read(1 << 20):
            tar.update(chunk)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            blob.update(chunk)
    os.link(path, os.path.join(blobs, blob.hexdigest()))
    diff_ids.append("sha256:" + tar.hexdigest())
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                  "digest": "sha256:" + blob.hexdigest(), "size": os.path.getsize(path)})
config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode(),
             "application/vnd.oci.image.config.v1+json")
manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config, "layers": descs}).encode(),
               "application/vnd.oci.image.manifest.v1+json")
manifest["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
with open(os.path.join(lay, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [manifest]}, f)
with open(os.path.join(lay, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
PY
ZIP=$(cat "${LAYERS[@]}" | wc -c)
log "image: ${#LAYERS[@]} layers, $((ZIP >> 20)) MiB compressed, $((RAW >> 20)) MiB unpacked"

# --- the cases -------------------------------------------------------------------------
out=$WORK/out
tar_cmd="bash -c 'i=0; for l in ${LAYERS[*]}; do i=\$((i+1)); mkdir -p $out/tar/\$i; tar -xzf \$l -C $out/tar/\$i & done; wait'"
declare -A CMD=(
  [pallet]="$PY -m pallet.image.extract $out/pallet ${LAYERS[*]}"
  [pallet-layers]="$PY -m pallet.image.extract --per-layer $out/pallet-layers ${LAYERS[*]}"
  [umoci]="umoci unpack --image $WORK/img:latest $out/umoci"
  [tar]="$tar_cmd"
)
CASES=(pallet pallet-layers umoci tar)

# Check once that every case works and that pallet's rootfs matches umoci's.
for c in "${CASES[@]}"; do
  rm -rf "$out"; mkdir -p "$out"
  bash -c "${CMD[$c]}" >"$WORK/check.out" 2>&1 || die "$c failed: $(tail -3 "$WORK/check.out")"
  if [ "$c" = pallet ]; then
    (cd "$out/pallet" && find . -mindepth 1 -printf '%p %m %U %G %y %l %s\n' | sort) >"$WORK/pallet.list"
  elif [ "$c" = umoci ]; then
    (cd "$out/umoci/rootfs" && find . -mindepth 1 -printf '%p %m %U %G %y %l %s\n' | sort) >"$WORK/umoci.list"
  fi
done
cmp -s "$WORK/pallet.list" "$WORK/umoci.list" || die "pallet's rootfs differs from umoci's: $(diff "$WORK/pallet.list" "$WORK/umoci.list" | head -5)"
log "check: every case unpacks; pallet's rootfs matches umoci's ($(wc -l <"$WORK/pallet.list") entries)"

# Interleaved rounds: one hyperfine call with --runs 1 per case, the order rotating every round,
# so that load from other processes on the VM hits every case alike. Medians are over rounds.
mkdir -p "$WORK/json"
n=${#CASES[@]}
for ((r = 0; r < WARMUP + RUNS; r++)); do
  args=()
  for ((k = 0; k < n; k++)); do
    c=${CASES[$(((k + r) % n))]}
    args+=(--prepare "bash -c 'rm -rf $out; mkdir -p $out; sync'" -n "$c" "${CMD[$c]}")
  done
  json=$WORK/json/round-$r.json; [ "$r" -lt "$WARMUP" ] && json=$WORK/json/warmup.json
  hyperfine -N --style none --runs 1 --export-json "$json" "${args[@]}" >/dev/null || die "hyperfine failed in round $r"
  [ "$r" -lt "$WARMUP" ] || log "round $((r - WARMUP + 1))/$RUNS done"
done
rm -f "$WORK/json/warmup.json"

python3 - "$WORK/json" "$ZIP" "$RAW" <<'PY'
import glob, json, statistics, sys
files = glob.glob(sys.argv[1] + "/round-*.json")
rounds = [{r["command"]: r["times"][0] * 1000 for r in json.load(open(f))["results"]} for f in files]
cpu_rounds = [{r["command"]: (r["user"] + r["system"]) * 1000 for r in json.load(open(f))["results"]} for f in files]
cases = list(rounds[0])
cpu = {c: statistics.median(r[c] for r in cpu_rounds) for c in cases}
med = {c: statistics.median(r[c] for r in rounds) for c in cases}
ratio = lambda a, b: statistics.median(r[a] / r[b] for r in rounds)  # median of per-round ratios
print(f"unpack: 5 layers, {int(sys.argv[2]) >> 20} MiB compressed, {int(sys.argv[3]) >> 20} MiB unpacked, {len(rounds)} interleaved rounds")
for c in cases:
    t = [r[c] for r in rounds]
    print(f"  {c:14s} median {med[c]:8.1f} ms  (min {min(t):.1f}, max {max(t):.1f})  cpu {cpu[c]:8.1f} ms")
r1, r2, r3 = ratio("pallet", "umoci"), ratio("pallet-layers", "tar"), ratio("pallet", "tar")
print(f"  pallet / umoci         = {r1:.2f}  (target < 1.00) {'OK' if r1 < 1 else 'MISSED'}")
print(f"  pallet-layers / tar    = {r2:.2f}  (target <= 1.10) {'OK' if r2 <= 1.1 else 'MISSED'}")
print(f"  pallet / tar           = {r3:.2f}")
print("SUMMARY image unpack: " + " ".join(f"{c}={m:.0f}ms" for c, m in med.items())
      + f" pallet/umoci={r1:.2f} pallet-layers/tar={r2:.2f} pallet/tar={r3:.2f}")
PY

# Part "archives": pallet save/load vs skopeo copy, in the same run.
if [ "${ARCHIVES:-1}" = 1 ]; then
    bash "$REPO/bench/image-archive.sh"
fi
