"""Issue 11's acceptance items 3, 4 and 5 through the ``pallet`` CLI on a private root.

3. Cache: a second build of an unchanged context is all CACHED (and gives the
   same image); changing one file reruns from the first COPY that includes it
   (the steps before stay CACHED); changing a file ``.dockerignore`` excludes
   reruns nothing.
4. A built image runs with ``pallet run``, is pushed to ``pallet registry
   serve`` (on 127.0.0.1, started and stopped here by pid) and pulled back into
   an empty store, and ``pallet history`` shows its steps.
5. ``pallet build`` killed with SIGKILL at 10 random moments: after the next
   command (``pallet images``) the store validates and no container, mount,
   active snapshot, temp file or cgroup of the build is left; a build after
   that succeeds.

Which steps ran and which were CACHED is read from ``--progress=plain``, which
prints as BuildKit's does: ``#N [stage i/n] INSTRUCTION`` for a step (its
variables expanded or not) and ``#N CACHED`` when it was a cache hit.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import corpus_kit
import pytest

from pallet.image.store import ImageStore
from pallet.testing.images import validate_image

pytestmark = [pytest.mark.root, pytest.mark.slow]

DOCKERFILE = """\
FROM busybox
ENV APP=/app
RUN mkdir -p $APP && echo prepared > $APP/prepared
COPY config.txt $APP/
RUN cat $APP/config.txt > $APP/config.seen
COPY src/ $APP/src/
RUN ls $APP/src > $APP/src.list
COPY . /context/
CMD ["cat", "/app/config.seen", "/app/src.list"]
"""
# the steps that make layers, which the progress shows (BuildKit shows no ENV or CMD step)
STEPS = [
    "RUN mkdir -p $APP && echo prepared > $APP/prepared",
    "COPY config.txt $APP/",
    "RUN cat $APP/config.txt > $APP/config.seen",
    "COPY src/ $APP/src/",
    "RUN ls $APP/src > $APP/src.list",
    "COPY . /context/",
]
HISTORY_ENTRIES = 1 + 8  # the base image's, then one per instruction after FROM


def make_context(where: Path) -> Path:
    where.mkdir()
    (where / "Dockerfile").write_text(DOCKERFILE)
    (where / "config.txt").write_text("setting=1\n")
    (where / "src").mkdir()
    (where / "src" / "main.sh").write_text("echo main\n")
    (where / "src" / "lib.sh").write_text("echo lib\n")
    (where / "notes.md").write_text("notes\n")
    (where / "ignored.log").write_text("log line 1\n")
    (where / ".dockerignore").write_text("*.log\n")
    return where


_STEP = re.compile(r"^#(\d+) \[[^\]]*\] (.*)$")


def cached_steps(output: str) -> dict[str, bool]:
    """Each step's instruction text (as the build printed it) -> whether it was CACHED."""
    names: dict[str, str] = {}
    cached: set[str] = set()
    for line in output.splitlines():
        found = _STEP.match(line.strip())
        if found:
            names[found.group(1)] = found.group(2).strip()
        elif re.fullmatch(r"#(\d+) CACHED", line.strip()):
            cached.add(line.strip().split()[0][1:])
    return {text: number in cached for number, text in names.items() if not text.upper().startswith("FROM")}


def step_states(output: str) -> list[bool]:
    """Whether each of ``STEPS`` was CACHED, in order; fails naming a step the output does not show."""
    seen = cached_steps(output)
    states = []
    for step in STEPS:
        forms = (step, step.replace("$APP", "/app"))  # BuildKit names a step with its variables expanded
        matches = [cached for text, cached in seen.items() if text.endswith(forms)]
        assert matches, f"the build output does not show the step {step!r}:\n{output}"
        states.append(matches[0])
    return states


def image_id(env: corpus_kit.PalletLike, ref: str) -> str:
    return env.ok("image", "inspect", "--format", "{{.Id}}", ref).strip()


def build(env: corpus_kit.PalletLike, context: Path, tag: str, *extra: str) -> str:
    done = env.pallet("build", "--progress=plain", *extra, "-t", tag, str(context), timeout=300)
    assert done.returncode == 0, f"pallet build failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr


# --- 3: the cache ---------------------------------------------------------------------------------------


def test_unchanged_context_builds_all_cached(build_env: corpus_kit.PalletLike, tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    first = build(build_env, context, "cache:1")
    assert not any(step_states(first)), f"a first build on an empty cache hit the cache:\n{first}"
    second = build(build_env, context, "cache:2")
    assert all(step_states(second)), f"an unchanged context rebuilt steps:\n{second}"
    assert image_id(build_env, "cache:1") == image_id(build_env, "cache:2")


def test_changed_file_reruns_from_the_first_copy_that_includes_it(
    build_env: corpus_kit.PalletLike, tmp_path: Path
) -> None:
    context = make_context(tmp_path / "ctx")
    build(build_env, context, "cache:1")
    (context / "src" / "lib.sh").write_text("echo lib changed\n")
    again = build(build_env, context, "cache:2")
    first_copy = STEPS.index("COPY src/ $APP/src/")
    expected = [i < first_copy for i in range(len(STEPS))]
    assert step_states(again) == expected, f"expected CACHED up to {STEPS[first_copy]!r} only:\n{again}"
    assert image_id(build_env, "cache:1") != image_id(build_env, "cache:2")
    shown = build_env.ok("run", "--rm", "cache:2", "cat", "/app/src/lib.sh")
    assert shown == "echo lib changed\n"


def test_changed_mode_reruns_but_changed_mtime_does_not(
    build_env: corpus_kit.PalletLike, tmp_path: Path
) -> None:
    context = make_context(tmp_path / "ctx")
    build(build_env, context, "cache:1")
    config = context / "config.txt"
    stat = config.stat()
    config.touch()  # a new mtime only: the content hash is the same
    assert config.stat().st_mtime_ns != stat.st_mtime_ns
    assert all(step_states(build(build_env, context, "cache:2")))
    config.chmod(0o600)
    states = step_states(build(build_env, context, "cache:3"))
    first_copy = STEPS.index("COPY config.txt $APP/")
    assert states == [i < first_copy for i in range(len(STEPS))]


def test_changed_dockerignored_file_reruns_nothing(build_env: corpus_kit.PalletLike, tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    build(build_env, context, "cache:1")
    (context / "ignored.log").write_text("log line 2, a change .dockerignore hides\n")
    (context / "new.log").write_text("a new ignored file\n")
    again = build(build_env, context, "cache:2")
    assert all(step_states(again)), f"a change to an ignored file rebuilt steps:\n{again}"
    assert image_id(build_env, "cache:1") == image_id(build_env, "cache:2")


def test_no_cache_reruns_every_step(build_env: corpus_kit.PalletLike, tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx")
    build(build_env, context, "cache:1")
    again = build(build_env, context, "cache:2", "--no-cache")
    assert not any(step_states(again)), f"--no-cache hit the cache:\n{again}"


# --- 4: run, push, pull, history -----------------------------------------------------------------------

_LISTENING = re.compile(r"serving the registry on http://127\.0\.0\.1:(\d+)")


class Registry:
    """``pallet registry serve`` on 127.0.0.1 with a free port; stopped by pid."""

    def __init__(self, storage: Path, log: Path) -> None:
        self._log = log.open("wb")
        self.log = log
        self.proc = subprocess.Popen(
            [corpus_kit.PALLET, "registry", "serve", "--addr", "127.0.0.1:0", "--storage", str(storage)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = _LISTENING.search(log.read_text(errors="replace"))
            if found:
                self.host = f"127.0.0.1:{found.group(1)}"
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"the registry did not start: {log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def test_built_image_runs_pushes_pulls_back_and_shows_its_history(
    build_env: corpus_kit.PalletLike, empty_env: corpus_kit.PalletLike, tmp_path: Path
) -> None:
    context = make_context(tmp_path / "ctx")
    build(build_env, context, "built:1")
    ran = build_env.ok("run", "--rm", "built:1")
    assert ran == "setting=1\nlib.sh\nmain.sh\n"

    registry = Registry(tmp_path / "registry", tmp_path / "registry.log")
    try:
        remote = f"{registry.host}/build/app:1"
        build_env.ok("tag", "built:1", remote)
        build_env.ok("push", remote)
        pulled = empty_env.pallet("pull", "-q", remote, timeout=120)
        assert pulled.returncode == 0, pulled.stderr
        assert image_id(empty_env, remote) == image_id(build_env, "built:1")
        assert empty_env.ok("run", "--rm", remote) == ran
    finally:
        registry.stop()

    history = build_env.pallet("history", "--no-trunc", "--format", "{{json .}}", "built:1")
    assert history.returncode == 0, history.stderr
    rows = [json.loads(line) for line in history.stdout.splitlines() if line.strip()]
    shown = "\n".join(str(row.get("CreatedBy", "")) for row in rows)
    for step in (
        "mkdir -p $APP && echo prepared > $APP/prepared",
        "ls $APP/src > $APP/src.list",
        "COPY",
        "CMD",
    ):
        assert step in shown, f"pallet history does not show {step!r}:\n{history.stdout}"
    assert len(rows) == HISTORY_ENTRIES, history.stdout


# --- 5: SIGKILL at random moments ----------------------------------------------------------------------

KILLS = 10


class IdWatcher:
    """Collects the names of containers a build makes (64 hex digits under the root or run dir) while it runs,
    so their cgroups can be looked for afterwards."""

    _ID = re.compile(r"[0-9a-f]{64}")

    def __init__(self, env: corpus_kit.PalletLike) -> None:
        self.env = env
        self.ids: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            self.scan()

    def scan(self) -> None:
        for base in (self.env.run_root, self.env.root / "containers"):
            for _dir, dirs, _files in os.walk(base):
                self.ids.update(d for d in dirs if self._ID.fullmatch(d))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def leftovers(env: corpus_kit.PalletLike, ids: set[str]) -> dict[str, list[str]]:
    """What builds may leave: containers, mounts, cgroups, processes, state (the engine kit's list) and
    active snapshots and temp files of the store."""
    found = env.leftovers(sorted(ids))
    found["containers"] = env.container_ids()
    with ImageStore.open(env.root) as store:
        found["active snapshots"] = [s.key for s in store.snapshots.walk() if s.kind != "committed"]
    for sub in ("content/ingest", "snapshots/tmp"):
        d = env.root / sub
        if d.is_dir():
            found[sub] = sorted(p.name for p in d.iterdir())
    return {k: v for k, v in found.items() if v}


def test_sigkilled_builds_leave_a_valid_store_and_nothing_behind(
    build_env: corpus_kit.PalletLike, tmp_path: Path
) -> None:
    context = make_context(tmp_path / "ctx")
    # RUN steps that take a moment, so kills land inside containers as well as between steps
    (context / "Dockerfile").write_text(DOCKERFILE.replace("RUN ls", "RUN sleep 0.3 && ls"))
    argv = build_env.argv("build", "--no-cache", "-q", "-t", "killed:1", str(context))
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    full = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    build_env.ok("rmi", "killed:1")

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    watcher = IdWatcher(build_env)
    try:
        for kill in range(KILLS):
            where = f"kill {kill} (seed {seed})"
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                time.sleep(rng.uniform(0.0, full))
            finally:
                proc.kill()
                proc.wait()
            after = build_env.pallet("images")
            assert after.returncode == 0, f"{where}: pallet images failed: {after.stderr}"
            watcher.scan()
            left = leftovers(build_env, watcher.ids)
            assert left == {}, f"{where}: left behind after the next command: {left}"
            with ImageStore.open(build_env.root) as store:
                for record in store.list_images():
                    validate_image(store, str(record.id))
    finally:
        watcher.stop()
    final = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert final.returncode == 0, f"a build after the kills failed: {final.stderr}"
    assert build_env.ok("run", "--rm", "killed:1") == "setting=1\nlib.sh\nmain.sh\n"
    assert leftovers(build_env, watcher.ids) == {}


def test_failed_build_leaves_nothing_and_tags_nothing(
    build_env: corpus_kit.PalletLike, tmp_path: Path
) -> None:
    context = make_context(tmp_path / "ctx")
    (context / "Dockerfile").write_text(DOCKERFILE.replace("RUN ls $APP/src", "RUN exit 42; ls $APP/src"))
    done = build_env.pallet("build", "-t", "broken:1", str(context), timeout=300)
    assert done.returncode != 0
    assert "42" in done.stdout + done.stderr
    assert build_env.pallet("image", "inspect", "broken:1").returncode != 0
    assert leftovers(build_env, set()) == {}
