#!/usr/bin/env bash
# bench/api.sh - the Docker Engine API: the same docker CLI against `pallet system service` and a
# private dockerd, in one run, interleaved.
#
#   1. `docker run --rm busybox true` (each engine's default network; then both with --network none)
#   2. `docker ps` with N (50) running containers, and C (100) concurrent `GET /containers/json`:
#      p50 and p99 latency; and `docker ps` against an engine that answers from memory (the floor
#      the CLI's own start and work set for any engine)
#   3. RSS of the idle service vs idle dockerd + its containerd
#
# Prints medians and ratios pallet/dockerd and a SUMMARY line. Targets (issue 12): run <= 0.4x,
# ps and concurrent list p50/p99 <= 0.5x, idle RSS <= 0.5x.
#
#   sudo bench/api.sh          RUNS=10 ROUNDS=3 N=50 C=100 by default; NO_DOCKER=1 measures pallet only
#
# Everything lives in a private temp dir: pallet's --root/--run-root and its socket; dockerd's
# --data-root, --exec-root, --pidfile and -H socket, and a private bridge made for it (a /24 no
# host route uses; --iptables=false, so the host's firewall is not touched). dockerd and the
# service are stopped by their pids; the bridge is deleted. Never --bridge=none: each engine does
# its ordinary work (pallet's default: the default network of the engine as it stands).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-10}
ROUNDS=${ROUNDS:-3}
N=${N:-50}
C=${C:-100}
PALLET_BIN=${PALLET:-$top/.venv/bin/pallet}
PY=$top/.venv/bin/python
DOCKER=${DOCKER_CLI:-/usr/local/bin/docker}

die() { echo "api.sh: $*" >&2; exit 1; }
log() { echo "api.sh: $*" >&2; }
[ "$(id -u)" = 0 ] || die "run as root"
for tool in hyperfine jq ip; do command -v "$tool" >/dev/null || die "missing $tool"; done
[ -x "$DOCKER" ] || die "missing the docker CLI at $DOCKER"
[ -x "$PALLET_BIN" ] || die "missing $PALLET_BIN (run scripts/install.sh)"
with_docker=1
if [ "${NO_DOCKER:-0}" = 1 ] || ! command -v dockerd >/dev/null; then with_docker=0; fi

work=$(mktemp -d /tmp/pallet-bench-api.XXXXXX)
export DOCKER_CONFIG=$work/docker-config
mkdir -p "$DOCKER_CONFIG"
PL="$PALLET_BIN --root $work/pallet-root --run-root $work/pallet-run"
PD="$DOCKER -H unix://$work/pallet.sock"
DD="$DOCKER -H unix://$work/docker.sock"
bridge=pbapi$$
service_pid=""
dockerd_pid=""
floor_pid=""
cleanup() {
    set +e
    [ -n "$floor_pid" ] && kill "$floor_pid" 2>/dev/null
    $PL ps -a -q --no-trunc 2>/dev/null | xargs -r $PL rm -f >/dev/null 2>&1
    if [ -n "$service_pid" ]; then kill "$service_pid" 2>/dev/null; wait "$service_pid" 2>/dev/null; fi
    local z
    z=$(cat "$work/pallet-run/shim-zygote.pid" 2>/dev/null)
    if [ -n "$z" ] && tr '\0' ' ' <"/proc/$z/cmdline" 2>/dev/null | grep -q -- "--zygote $work/pallet-run"; then
        kill -9 "$z" 2>/dev/null
    fi
    if [ -n "$dockerd_pid" ]; then
        $DD ps -aq 2>/dev/null | xargs -r $DD rm -f >/dev/null 2>&1
        kill "$dockerd_pid" 2>/dev/null
        for _ in $(seq 150); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$dockerd_pid" 2>/dev/null
    fi
    grep -o " $work/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    ip link del "$bridge" 2>/dev/null
    rm -rf "$work"
    for d in /sys/fs/cgroup/*/pallet; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    true
}
trap cleanup EXIT

rss_kib() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo "$t"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# the median (or percentile $3) over every round's runs of command $2 (files $1.*.json), in ms
pct() {
    jq -r --arg n "$2" '.results[] | select(.command==$n) | .times[]' "$1".*.json | sort -g |
        awk -v p="${3:-50}" '{t[NR]=$1} END {i = int((NR - 1) * p / 100 + 0.5) + 1; printf "%.1f", t[i]*1000}'
}
rounds() {  # NAME then hyperfine arguments: ROUNDS rounds into $work/NAME.<round>.json
    local name=$1 r
    shift
    for r in $(seq "$ROUNDS"); do
        hyperfine -N --style none --runs "$RUNS" --warmup 2 --export-json "$work/$name.$r.json" "$@" >/dev/null
    done
}
wait_for() {  # CLI: until it answers
    for _ in $(seq 150); do $1 version >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}

# --- the engines ----------------------------------------------------------------------------------
bash "$top/scripts/make-busybox-image.sh" --root "$work/pallet-root" >/dev/null
$PL system service --host "unix://$work/pallet.sock" --log-level error >"$work/service.log" 2>&1 &
service_pid=$!
wait_for "$PD" || { tail -5 "$work/service.log" >&2; die "the pallet service did not come up"; }
$PD run --rm busybox true || die "docker run through pallet failed"

if [ $with_docker = 1 ]; then
    subnet=""
    for n in $(seq 77 120); do
        ip route | grep -q "^10\.254\.$n\." || { subnet=10.254.$n; break; }
    done
    [ -n "$subnet" ] || die "no free 10.254.x.0/24 for dockerd's private bridge"
    ip link add name "$bridge" type bridge
    ip addr add "$subnet.1/24" dev "$bridge"
    ip link set "$bridge" up
    mkdir -p "$work/dockerd"
    echo '{}' >"$work/dockerd/daemon.json"
    dockerd --config-file "$work/dockerd/daemon.json" --data-root "$work/dockerd/data" \
        --exec-root "$work/dockerd/exec" --pidfile "$work/dockerd/dockerd.pid" -H "unix://$work/docker.sock" \
        --bridge "$bridge" --iptables=false --ip-masq=false --ip-forward=false --userland-proxy=false \
        >"$work/dockerd/log" 2>&1 &
    dockerd_pid=$!
    wait_for "$DD" || { tail -5 "$work/dockerd/log" >&2; die "dockerd did not come up"; }
    $PL save -o "$work/busybox.tar" busybox:latest >/dev/null
    $DD load -q -i "$work/busybox.tar" >/dev/null
    $DD run --rm busybox true || die "docker run through dockerd failed"
fi

# --- 3. idle RSS (first: nothing has run but one container each) ---------------------------------
sleep 2
rss_pallet=$(rss_kib "$service_pid")
rss_docker=0
if [ $with_docker = 1 ]; then
    containerd_pid=$(pgrep -P "$dockerd_pid" -x containerd | head -1 || true)
    rss_docker=$(rss_kib "$dockerd_pid" $containerd_pid)
fi

# --- 1. docker run --rm ---------------------------------------------------------------------------
log "timing docker run --rm busybox true ($ROUNDS rounds of $RUNS runs each)"
cases=(-n pallet "$PD run --rm busybox true" -n pallet-none "$PD run --rm --network none busybox true")
if [ $with_docker = 1 ]; then
    cases+=(-n dockerd "$DD run --rm busybox true" -n dockerd-none "$DD run --rm --network none busybox true")
fi
rounds run "${cases[@]}"

# --- 2. ps with N containers, C concurrent lists --------------------------------------------------
log "starting $N detached containers on each engine"
for _ in $(seq "$N"); do $PD run -d busybox sleep 600 >/dev/null; done
if [ $with_docker = 1 ]; then for _ in $(seq "$N"); do $DD run -d busybox sleep 600 >/dev/null; done; fi
[ "$($PD ps -q | wc -l)" -ge "$N" ] || die "pallet lists fewer than $N containers"

# The floor: `docker ps` against an engine that answers instantly (each request forwarded to
# pallet once, then served from memory), so only the CLI's own work is left; no engine can go below it.
"$PY" - "$work/floor.sock" "$work/pallet.sock" <<'PYEOF' &
import http.client, socket, socketserver, sys
from http.server import BaseHTTPRequestHandler
listen, upstream = sys.argv[1], sys.argv[2]
cache = {}
class Upstream(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(upstream)
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def serve(self):
        key = (self.command, self.path)
        if key not in cache:
            conn = Upstream("localhost")
            conn.request(self.command, self.path, headers={"Host": "docker"})
            r = conn.getresponse()
            skip = ("content-length", "transfer-encoding", "connection")
            cache[key] = (r.status, [(k, v) for k, v in r.getheaders() if k.lower() not in skip], r.read())
            conn.close()
        status, headers, body = cache[key]
        self.send_response_only(status)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(body)
    do_GET = do_HEAD = serve
class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
Server(listen, Handler).serve_forever()
PYEOF
floor_pid=$!
FD="$DOCKER -H unix://$work/floor.sock"
wait_for "$FD" || die "the floor server did not come up"

log "timing docker ps with $N containers ($ROUNDS rounds of $RUNS runs each)"
cases=(-n pallet "$PD ps" -n floor "$FD ps")
[ $with_docker = 1 ] && cases+=(-n dockerd "$DD ps")
rounds ps "${cases[@]}"
kill "$floor_pid"; wait "$floor_pid" 2>/dev/null || true; floor_pid=""

# C requests at once, each on its own connection; ROUNDS rounds, the engines taking turns
concurrent() {  # SOCKET: one latency (ms) per line
    "$PY" - "$1" "$C" <<'PYEOF'
import socket, sys, threading, time
path, count = sys.argv[1], int(sys.argv[2])
times = [0.0] * count
go = threading.Event()
def one(i):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    go.wait()
    t0 = time.perf_counter()
    s.sendall(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    times[i] = (time.perf_counter() - t0) * 1000
    assert data.startswith(b"HTTP/1.1 200"), data[:100]
    s.close()
threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
for t in threads: t.start()
time.sleep(0.2); go.set()
for t in threads: t.join()
print("\n".join(f"{t:.2f}" for t in times))
PYEOF
}
log "timing $C concurrent GET /containers/json ($ROUNDS rounds)"
for _ in $(seq "$ROUNDS"); do
    concurrent "$work/pallet.sock" >>"$work/conc.pallet"
    [ $with_docker = 1 ] && concurrent "$work/docker.sock" >>"$work/conc.dockerd"
done
cpct() { sort -g "$1" | awk -v p="$2" '{t[NR]=$1} END {i = int((NR - 1) * p / 100 + 0.5) + 1; printf "%.1f", t[i]}'; }

# --- report ---------------------------------------------------------------------------------------
printf '\n%-44s %10s %10s %7s\n' measure pallet dockerd ratio
row() {  # LABEL PALLET DOCKERD
    local d=${3:-0}
    if [ $with_docker = 1 ]; then
        printf '%-44s %10s %10s %7s\n' "$1" "$2" "$d" "$(ratio "$2" "$d")"
    else
        printf '%-44s %10s %10s %7s\n' "$1" "$2" - -
    fi
}
d() { [ $with_docker = 1 ] && "$@" || echo 0; }
run_p=$(pct "$work/run" pallet); run_d=$(d pct "$work/run" dockerd)
none_p=$(pct "$work/run" pallet-none); none_d=$(d pct "$work/run" dockerd-none)
ps50_p=$(pct "$work/ps" pallet 50); ps50_d=$(d pct "$work/ps" dockerd 50)
ps99_p=$(pct "$work/ps" pallet 99); ps99_d=$(d pct "$work/ps" dockerd 99)
fl50=$(pct "$work/ps" floor 50); fl99=$(pct "$work/ps" floor 99)
c50_p=$(cpct "$work/conc.pallet" 50); c50_d=$(d cpct "$work/conc.dockerd" 50)
c99_p=$(cpct "$work/conc.pallet" 99); c99_d=$(d cpct "$work/conc.dockerd" 99)
row "docker run --rm busybox true (median ms)" "$run_p" "$run_d"
row "docker run --rm --network none ... (median ms)" "$none_p" "$none_d"
row "docker ps, $N containers: p50 ms" "$ps50_p" "$ps50_d"
row "docker ps, $N containers: p99 ms" "$ps99_p" "$ps99_d"
row "docker ps, instant engine (CLI floor): p50 ms" "$fl50" "$ps50_d"
row "docker ps, instant engine (CLI floor): p99 ms" "$fl99" "$ps99_d"
row "$C concurrent GET /containers/json: p50 ms" "$c50_p" "$c50_d"
row "$C concurrent GET /containers/json: p99 ms" "$c99_p" "$c99_d"
row "idle RSS KiB (service | dockerd+containerd)" "$rss_pallet" "$rss_docker"
echo "SUMMARY run=$(ratio "$run_p" "$run_d")x run-none=$(ratio "$none_p" "$none_d")x ps-p50=$(ratio "$ps50_p" "$ps50_d")x ps-p99=$(ratio "$ps99_p" "$ps99_d")x ps-floor-p50=$(ratio "$fl50" "$ps50_d")x list-p50=$(ratio "$c50_p" "$c50_d")x list-p99=$(ratio "$c99_p" "$c99_d")x rss=$(ratio "$rss_pallet" "$rss_docker")x (targets: run<=0.4 ps,list<=0.5 rss<=0.5)"
