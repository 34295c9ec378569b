#!/usr/bin/env bash
# bench/image-archive.sh - image archives: `pallet save` / `pallet load` against `skopeo copy`, same
# image, one run. (The save/load part of the image benchmarks; bench/image.sh times unpacking.)
#
# The image: a local ~200 MB, 4-layer OCI image with gzip'd layers (busybox rootfs; SMALL_FILES small
# files; 4 MiB random files; 1 MiB text files), put into a pallet store with `pallet load` of its
# oci-archive, so pallet holds the same gzip'd blobs as the OCI layout skopeo reads.
# Cases (each from an empty target: hyperfine --prepare removes it):
#   save   pallet save -o X.tar IMG        vs  skopeo copy oci:LAYOUT docker-archive:X.tar
#          (both decompress every layer into an uncompressed docker-archive)
#   load   pallet load -i X.tar (empty store, blobs verified, image recorded)
#                                          vs  skopeo copy docker-archive:X.tar oci:DIR
# Prints medians and the ratios pallet/skopeo (target <= 1.0).
# Knobs: RUNS (5), WARMUP (1), SIZE_MB (200), SMALL_FILES (2000), KEEP=1 (keep the work dir).
# Usage: sudo bench/image-archive.sh
set -euo pipefail
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
SIZE_MB=${SIZE_MB:-200}
SMALL_FILES=${SMALL_FILES:-2000}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=$REPO/.venv/bin/python
PALLET="$PY -m pallet.cli"

log() { printf '[image-archive.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
for t in hyperfine skopeo tar gzip busybox python3; do command -v "$t" >/dev/null || die "missing tool: $t"; done
[ -x "$PY" ] || die "no venv at $REPO/.venv (run scripts/install.sh)"

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/pallet-bench-archive.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
log "work dir: $WORK"

# --- the image: an OCI layout with gzip'd layers -----------------------------------------------
log "building a ${SIZE_MB} MB image (4 layers, ${SMALL_FILES} small files)"
python3 - "$WORK/layout" "$SIZE_MB" "$SMALL_FILES" <<'PY'
import gzip, hashlib, io, json, os, random, shutil, subprocess, sys, tarfile
layout, size_mb, small = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
blobs = os.path.join(layout, "blobs", "sha256")
os.makedirs(blobs)
rnd = random.Random(4)
words = ["".join(rnd.choice("etaoinshrdlucmfwypvbgkq") for _ in range(rnd.randint(2, 9))) for _ in range(3000)]

def text(size):
    out = " ".join(rnd.choices(words, k=size // 5)).encode()
    return (out * (size // max(len(out), 1) + 1))[:size]

def put(data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

def layer(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode, link in files:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 1_577_836_800, mode
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    return put(blob, "application/vnd.oci.image.layer.v1.tar+gzip"), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()

applets = subprocess.run(["busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
with open(shutil.which("busybox"), "rb") as f:
    bb = f.read()
base = [(d, None, 0o755, "") for d in ("bin", "etc", "tmp", "root")]
base += [("bin/busybox", bb, 0o755, "")] + [(f"bin/{a}", None, 0o777, "/bin/busybox") for a in applets if a != "busybox"]
base += [("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644, "")]
smalls = [("small", None, 0o755, "")]
for i in range(small):
    size = rnd.randint(256, 16384)
    smalls.append((f"small/f{i:05d}", os.urandom(size) if i % 2 else text(size), 0o644, ""))
rest = max(size_mb - 2 - small * 8 // 1024, 8)
chunks = [("chunks", None, 0o755, "")] + [(f"chunks/r{i:03d}", os.urandom(4 << 20), 0o644, "") for i in range(rest // 2 // 4)]
texts = [("texts", None, 0o755, "")] + [(f"texts/t{i:03d}", text(1 << 20), 0o644, "") for i in range(rest - rest // 2 // 4 * 4)]
descs, diff_ids = [], []
for files in (base, smalls, chunks, texts):
    d, diff = layer(files)
    descs.append(d)
    diff_ids.append(diff)
config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode(),
             "application/vnd.oci.image.config.v1+json")
manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config, "layers": descs}).encode(),
               "application/vnd.oci.image.manifest.v1+json")
manifest["annotations"] = {"org.opencontainers.image.ref.name": "latest",
                           "io.containerd.image.name": "docker.io/library/bench:latest"}
with open(os.path.join(layout, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [manifest]}, f)
with open(os.path.join(layout, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
PY
tar -C "$WORK/layout" -cf "$WORK/layout.tar" .
SRC=$WORK/src-root
$PALLET --root "$SRC" load -q -i "$WORK/layout.tar" >/dev/null || die "pallet could not load the OCI archive"
ZIP=$(du -sb "$WORK/layout/blobs" | cut -f1)

# The archive both loads read: made once by pallet, checked with skopeo.
$PALLET --root "$SRC" save -q -o "$WORK/bench.tar" bench:latest
skopeo inspect "docker-archive:$WORK/bench.tar" >/dev/null || die "skopeo does not accept pallet's archive"
TAR=$(stat -c %s "$WORK/bench.tar")
log "image: 4 layers, $((ZIP >> 20)) MiB compressed, archive $((TAR >> 20)) MiB"

out=$WORK/out
declare -A CMD=(
  [pallet-save]="$PALLET --root $SRC save -q -o $out/x.tar bench:latest"
  [skopeo-save]="skopeo copy -q oci:$WORK/layout:latest docker-archive:$out/x.tar:bench:latest"
  [pallet-load]="$PALLET --root $out/root load -q -i $WORK/bench.tar"
  [skopeo-load]="skopeo copy -q docker-archive:$WORK/bench.tar oci:$out/oci:latest"
)
CASES=(pallet-save skopeo-save pallet-load skopeo-load)
for c in "${CASES[@]}"; do
  rm -rf "$out"; mkdir -p "$out"
  bash -c "${CMD[$c]}" >"$WORK/check.out" 2>&1 || die "$c failed: $(tail -3 "$WORK/check.out")"
done
log "check: every case works"

args=()
for c in "${CASES[@]}"; do args+=(--prepare "bash -c 'rm -rf $out; mkdir -p $out; sync'" -n "$c" "${CMD[$c]}"); done
hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" --export-json "$WORK/archive.json" "${args[@]}" >&2

python3 - "$WORK/archive.json" "$ZIP" "$TAR" <<'PY'
import json, statistics, sys
results = {r["command"]: r["times"] for r in json.load(open(sys.argv[1]))["results"]}
med = {c: statistics.median(t) * 1000 for c, t in results.items()}
print(f"archives: 4 layers, {int(sys.argv[2]) >> 20} MiB compressed, docker-archive {int(sys.argv[3]) >> 20} MiB, "
      f"{len(next(iter(results.values())))} runs")
for c, m in med.items():
    t = results[c]
    print(f"  {c:12s} median {m:8.1f} ms  (min {min(t) * 1000:.1f}, max {max(t) * 1000:.1f})")
ratios = {op: med[f"pallet-{op}"] / med[f"skopeo-{op}"] for op in ("save", "load")}
for op, r in ratios.items():
    print(f"  pallet-{op} / skopeo-{op} = {r:.2f}  (target <= 1.00) {'OK' if r <= 1 else 'MISSED'}")
print("SUMMARY image archive: " + " ".join(f"{c}={m:.0f}ms" for c, m in med.items())
      + " " + " ".join(f"{op}-ratio={r:.2f}" for op, r in ratios.items()))
PY
