"""pallet build end to end: real builds from the local busybox image, through the CLI.

Each test makes its context in ``tmp_path`` and builds on ``build_env``'s
private root; the fixture removes whatever containers, mounts and processes
a test leaves, even when it fails.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root


def context(tmp_path: Path, dockerfile: str, files: dict[str, str | bytes] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    return ctx


def build(env, ctx: Path, *args: str):  # type: ignore[no-untyped-def]
    return env.pallet("build", *args, str(ctx), timeout=300)


def piped(env, data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:  # type: ignore[no-untyped-def]
    """``pallet ARGS`` with ``data`` on its stdin (bytes: a tar context is not text)."""
    return subprocess.run(env.argv(*args), input=data, capture_output=True, check=False, timeout=300)


def inspect(env, ref: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return json.loads(env.ok("image", "inspect", ref))[0]


def step_containers(env) -> list[str]:  # type: ignore[no-untyped-def]
    out = env.ok("ps", "-a", "-q", "--filter", "label=pallet.build.owner")
    return out.split()


def test_a_built_image_runs_and_its_history_shows_the_steps(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        tmp_path,
        'FROM busybox\nENV GREETING=hello\nARG WHO=world\nRUN echo "$GREETING $WHO" > /greeting\n'
        "COPY app.txt /app/\nWORKDIR /app\nUSER nobody\nEXPOSE 8080\nLABEL org.test=yes\n"
        'CMD ["cat", "/greeting", "app.txt"]\n',
        {"app.txt": "from the context\n"},
    )
    done = build(build_env, ctx, "-t", "app:1", "-t", "app:2")
    assert done.returncode == 0, done.stderr
    assert build_env.ok("run", "--rm", "app:1") == "hello world\nfrom the context\n"
    config = inspect(build_env, "app:2")["Config"]
    assert config["WorkingDir"] == "/app"
    assert config["User"] == "nobody"
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Labels"]["org.test"] == "yes"
    assert "GREETING=hello" in config["Env"]
    assert not any(e.startswith("WHO=") for e in config["Env"])  # an ARG is not kept in the image
    history = build_env.ok("history", "--no-trunc", "app:1")
    for text in ("ENV GREETING=hello", "RUN /bin/sh -c echo", "COPY app.txt /app/", "WORKDIR /app", "CMD"):
        assert text in history
    assert step_containers(build_env) == []


def test_an_unchanged_rebuild_is_all_cached_and_gives_the_same_image(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        tmp_path,
        'FROM busybox\nRUN echo one > /one\nCOPY a /a\nCOPY b /b\nRUN cat /a /b > /ab\nCMD ["sh"]\n',
        {"a": "A\n", "b": "B\n", "ignored.log": "x\n", ".dockerignore": "*.log\n"},
    )
    first = build(build_env, ctx, "-q")
    assert first.returncode == 0, first.stderr
    again = build(build_env, ctx)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("CACHED") == 4
    assert build(build_env, ctx, "-q").stdout == first.stdout
    # a file .dockerignore excludes changes: nothing reruns
    (ctx / "ignored.log").write_text("changed\n")
    assert build(build_env, ctx).stderr.count("CACHED") == 4
    # b changes: COPY b and what follows rerun, the steps before stay cached
    (ctx / "b").write_text("B2\n")
    changed = build(build_env, ctx, "-t", "ab")
    assert changed.returncode == 0, changed.stderr
    assert changed.stderr.count("CACHED") == 2
    assert build_env.ok("run", "--rm", "ab", "cat", "/ab") == "A\nB2\n"
    # modes count, mtimes do not
    os.utime(ctx / "a", (1, 1))
    assert build(build_env, ctx).stderr.count("CACHED") == 4
    os.chmod(ctx / "a", 0o600)
    assert build(build_env, ctx).stderr.count("CACHED") == 1
    # --no-cache runs everything
    assert "CACHED" not in build(build_env, ctx, "--no-cache").stderr


def test_a_failing_run_names_the_step_and_exit_code_and_leaves_nothing(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(tmp_path, "FROM busybox\nRUN echo before\nRUN echo oops >&2; exit 3\nRUN echo never\n")
    done = build(build_env, ctx, "-t", "broken")
    assert done.returncode != 0
    assert "Dockerfile:3" in done.stderr
    assert "exit code: 3" in done.stderr
    assert "oops" in done.stderr
    assert "never" not in done.stderr.replace("RUN echo never", "")
    assert build_env.pallet("image", "inspect", "broken").returncode != 0
    assert build_env.ok("ps", "-a", "-q") == ""
    assert build_env.leftovers(build_env.container_ids()) == {}


def test_a_missing_copy_source_is_named(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(tmp_path, "FROM busybox\nCOPY nothere.txt /x\n")
    done = build(build_env, ctx)
    assert done.returncode != 0
    assert "nothere.txt" in done.stderr


def test_copy_outside_the_context_is_refused(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "secret").write_text("no\n")
    ctx = context(tmp_path, "FROM busybox\nCOPY ../secret /x\n")
    done = build(build_env, ctx)
    assert done.returncode != 0
    assert "outside the build context" in done.stderr


def test_a_symlink_in_the_context_never_leads_out(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside.txt"
    outside.write_text("host file\n")
    ctx = context(tmp_path, "FROM busybox\nCOPY link /copied\nCOPY dir /dir/\n", {"dir/inner": "i\n"})
    (ctx / "link").symlink_to(outside)
    (ctx / "dir" / "up").symlink_to("../../outside.txt")
    done = build(build_env, ctx, "-t", "links")
    # the top-level link resolves inside the context, where its target does not exist
    assert done.returncode != 0
    (ctx / "link").unlink()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY dir /dir/\n")
    assert build(build_env, ctx, "-t", "links").returncode == 0
    out = build_env.ok("run", "--rm", "links", "sh", "-c", "readlink /dir/up; cat /dir/up || echo unreadable")
    assert out.startswith("../../outside.txt\n")
    assert "host file" not in out


def test_multi_stage_builds_only_what_the_target_needs(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        tmp_path,
        "FROM busybox AS unused\nRUN echo UNUSED-STAGE-RAN\n"
        "FROM busybox AS builder\nRUN mkdir /out && echo built > /out/artifact\n"
        "FROM scratch AS final\nCOPY --from=builder /out/artifact /artifact\n"
        "FROM busybox\nCOPY --from=final /artifact /from-final\nCOPY --from=1 /out /out2\n",
    )
    done = build(build_env, ctx, "-t", "multi")
    assert done.returncode == 0, done.stderr
    assert "UNUSED-STAGE-RAN" not in done.stderr
    assert build_env.ok("run", "--rm", "multi", "cat", "/from-final", "/out2/artifact") == "built\nbuilt\n"
    target = build(build_env, ctx, "--target", "builder", "-t", "only-builder")
    assert target.returncode == 0, target.stderr
    assert "COPY --from=final" not in target.stderr
    missing = build(build_env, ctx, "--target", "nope")
    assert missing.returncode != 0
    assert "nope" in missing.stderr


def test_heredocs_arg_scoping_shell_and_escape(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        tmp_path,
        "# escape=`\nARG VERSION=1.0\nFROM busybox\nARG VERSION\nENV V=$VERSION\n"
        'RUN <<EOF\necho "script $V" > /script-out\nEOF\n'
        "COPY <<-'END' /conf\n\tliteral $V\n\tEND\n"
        'SHELL ["/bin/sh", "-ec"]\nRUN echo a `\n  && echo b > /ab\n',
    )
    done = build(build_env, ctx, "-t", "here", "--build-arg", "VERSION=2.0")
    assert done.returncode == 0, done.stderr
    out = build_env.ok("run", "--rm", "here", "cat", "/script-out", "/conf", "/ab")
    assert out == "script 2.0\nliteral $V\nb\n"
    assert inspect(build_env, "here")["Config"]["Shell"] == ["/bin/sh", "-ec"]


def test_add_extracts_local_archives_and_copy_sets_owners_and_modes(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = b"inside the tar\n"
        info = tarfile.TarInfo("pkg/file.txt")
        info.size, info.mode, info.uid, info.gid = len(data), 0o640, 7, 8
        tar.addfile(info, io.BytesIO(data))
    ctx = context(
        tmp_path,
        "FROM busybox\nADD pkg.tar.gz /opt/\nCOPY --chown=nobody:nogroup --chmod=0750 tool /usr/local/bin/\n",
        {"pkg.tar.gz": gzip.compress(raw.getvalue()), "tool": "#!/bin/sh\necho tool\n"},
    )
    done = build(build_env, ctx, "-t", "added")
    assert done.returncode == 0, done.stderr
    out = build_env.ok(
        "run",
        "--rm",
        "added",
        "sh",
        "-c",
        "cat /opt/pkg/file.txt; stat -c '%a %u %g' /opt/pkg/file.txt /usr/local/bin/tool",
    )
    assert out == "inside the tar\n640 7 8\n750 65534 65534\n"


def test_run_mounts_cache_persists_and_secret_stays_out_of_the_image(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "token"
    secret.write_text("s3cr3t")
    ctx = context(
        tmp_path,
        "FROM busybox\n"
        "RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > /count\n"
        "RUN --mount=type=secret,id=token cat /run/secrets/token > /dev/null && echo ok > /used\n"
        "RUN --mount=type=bind,source=.,target=/src cp /src/data /data\n",
        {"data": "bound\n"},
    )
    first = build(build_env, ctx, "-t", "mounts", "--secret", f"id=token,src={secret}")
    assert first.returncode == 0, first.stderr
    second = build(build_env, ctx, "-t", "mounts2", "--no-cache", "--secret", f"id=token,src={secret}")
    assert second.returncode == 0, second.stderr
    assert build_env.ok("run", "--rm", "mounts2", "cat", "/count", "/used", "/data") == "2\nok\nbound\n"
    assert (
        build_env.ok("run", "--rm", "mounts2", "sh", "-c", "ls /run/secrets 2>&1 || true").find("token") == -1
    )
    assert "s3cr3t" not in build_env.ok("history", "--no-trunc", "mounts2")


def test_network_none_and_platform_errors(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(tmp_path, "FROM busybox\nRUN --network=none ip link | grep -c 'state' > /links || true\n")
    assert build(build_env, ctx, "-t", "net").returncode == 0
    bad = build(build_env, ctx, "--platform", "linux/arm64")
    assert bad.returncode != 0
    assert "linux/arm64" in bad.stderr


def test_outputs_iidfile_and_stdin_contexts(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(tmp_path, "FROM busybox\nCOPY f /exported/f\n", {"f": "exported\n"})
    iid = tmp_path / "iid"
    local = tmp_path / "out"
    tar_out = tmp_path / "out.tar"
    done = build(
        build_env,
        ctx,
        "--iidfile",
        str(iid),
        "-o",
        f"type=local,dest={local}",
        "-o",
        f"type=tar,dest={tar_out}",
    )
    assert done.returncode == 0, done.stderr
    assert iid.read_text().startswith("sha256:")
    assert (local / "exported" / "f").read_text() == "exported\n"
    assert (local / "bin" / "busybox").exists()
    with tarfile.open(tar_out) as tar:
        assert "exported/f" in tar.getnames()
    # a tar context on stdin, and a Dockerfile on stdin
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name in ("Dockerfile", "f"):
            tar.add(ctx / name, arcname=name)
    from_stdin = piped(build_env, raw.getvalue(), "build", "-t", "piped", "-")
    assert from_stdin.returncode == 0, from_stdin.stderr
    df = piped(build_env, b"FROM busybox\nCOPY f /g\n", "build", "-t", "dfstdin", "-f", "-", str(ctx))
    assert df.returncode == 0, df.stderr
    assert build_env.ok("run", "--rm", "dfstdin", "cat", "/g") == "exported\n"


def test_onbuild_triggers_run_in_the_child_build(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    parent = context(tmp_path, "FROM busybox\nONBUILD COPY marker /marker\nONBUILD RUN echo triggered > /t\n")
    assert build(build_env, parent, "-t", "parent-img").returncode == 0
    assert inspect(build_env, "parent-img")["Config"]["OnBuild"] == [
        "COPY marker /marker",
        "RUN echo triggered > /t",
    ]
    child_dir = tmp_path / "child"
    child_dir.mkdir()
    (child_dir / "Dockerfile").write_text("FROM parent-img\n")
    (child_dir / "marker").write_text("m\n")
    done = build_env.pallet("build", "-t", "child-img", str(child_dir), timeout=300)
    assert done.returncode == 0, done.stderr
    assert build_env.ok("run", "--rm", "child-img", "cat", "/marker", "/t") == "m\ntriggered\n"
    assert not inspect(build_env, "child-img")["Config"].get("OnBuild")


def test_source_date_epoch_makes_builds_reproducible(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # RUN writes files (and the dirs holding them) with the time of the build: the layers clamp them
    ctx = context(
        tmp_path,
        "FROM busybox\nCOPY a /app/a\nRUN echo x > /app/x && mkdir -p /d/e && touch /d/e/f\nENV X=1\n",
        {"a": "same\n"},
    )
    first = build(build_env, ctx, "-q", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000")
    time.sleep(1.1)
    second = build(build_env, ctx, "-q", "--no-cache", "--build-arg", "SOURCE_DATE_EPOCH=1700000000")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


def test_builder_prune_empties_the_cache(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(tmp_path, "FROM busybox\nRUN echo x > /x\n")
    assert build(build_env, ctx).returncode == 0
    pruned = build_env.pallet("builder", "prune", "-a", "-f")
    assert pruned.returncode == 0, pruned.stderr
    assert "Total:" in pruned.stdout
    until = str(int(time.time()) + 5)
    events = build_env.pallet("events", "--since", "0", "--until", until, "--filter", "type=builder")
    assert events.stdout.split()[1:3] == ["builder", "prune"], events.stdout  # as dockerd records it
    assert "CACHED" not in build(build_env, ctx, "-t", "seed").stderr
    # the cache is gone again, but a pallet-built image carries its steps: --cache-from uses them
    assert build_env.pallet("builder", "prune", "-a", "-f").returncode == 0
    assert build(build_env, ctx, "--cache-from", "seed").stderr.count("CACHED") == 1


def test_sigkill_of_a_build_leaves_nothing_after_the_next_command(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(tmp_path, 'FROM busybox\nRUN echo st""arted; sleep 600\n')
    proc = subprocess.Popen(
        build_env.argv("build", str(ctx)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            if raw.rstrip().endswith(b" started"):
                break
        ids = build_env.container_ids()
        assert ids  # the RUN's step container
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    # the next command, whatever it is, removes the killed build's step containers before it returns
    build_env.ok("images")
    assert build_env.container_ids() == []
    assert build_env.leftovers(ids) == {}
    assert step_containers(build_env) == []
    other = context(tmp_path / "other", "FROM busybox\nRUN true\n")
    assert build(build_env, other).returncode == 0


def test_add_of_a_url_is_fetched_and_checked(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import http.server
    import threading

    served = tmp_path / "srv"
    served.mkdir()
    (served / "file.txt").write_text("remote content\n")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/file.txt"
        digest = hashlib.sha256(b"remote content\n").hexdigest()
        ctx = context(tmp_path, f"FROM busybox\nADD --checksum=sha256:{digest} {url} /dl/\n")
        done = build(build_env, ctx, "-t", "fetched")
        assert done.returncode == 0, done.stderr
        assert (
            build_env.ok("run", "--rm", "fetched", "stat", "-c", "%a %n", "/dl/file.txt")
            == "600 /dl/file.txt\n"
        )
        (ctx / "Dockerfile").write_text(f"FROM busybox\nADD --checksum=sha256:{'0' * 64} {url} /dl/\n")
        wrong = build(build_env, ctx)
        assert wrong.returncode != 0
        assert "checksum mismatch" in wrong.stderr
        (ctx / "Dockerfile").write_text(f"FROM busybox\nADD {url}.missing /x\n")
        missing = build(build_env, ctx)
        assert missing.returncode != 0
        assert "404" in missing.stderr
    finally:
        server.shutdown()
        server.server_close()


def layer_members(env, tmp_path: Path, ref: str) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """The paths in each of the image's layers, bottom first (read from ``pallet save``)."""
    out = tmp_path / "saved.tar"
    env.ok("save", "-o", str(out), ref)
    with tarfile.open(out) as saved:
        manifest = json.load(saved.extractfile("manifest.json"))  # type: ignore[arg-type]
        layers = []
        for name in manifest[0]["Layers"]:
            data = saved.extractfile(name).read()  # type: ignore[union-attr]
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                layers.append([m.name for m in layer.getmembers()])
    return layers


def test_a_run_that_changes_nothing_makes_an_empty_layer_and_later_steps_see_earlier_ones(  # type: ignore[no-untyped-def]
    build_env, tmp_path: Path
) -> None:
    ctx = context(
        tmp_path,
        "FROM busybox\nRUN true\nRUN echo x > /x\nCOPY a /app/a\nRUN cat /x /app/a > /y && rm /x\n",
        {"a": "from a\n"},
    )
    done = build(build_env, ctx, "-t", "steps:1")
    assert done.returncode == 0, done.stderr
    layers = layer_members(build_env, tmp_path, "steps:1")
    assert layers[-4] == []  # RUN true: not even the /etc that held the mount points of /etc/hosts & co
    assert layers[-3] == ["x"]
    assert sorted(layers[-1]) == [".wh.x", "y"]
    assert build_env.ok("run", "--rm", "steps:1", "cat", "/y") == "x\nfrom a\n"
    assert build_env.pallet("run", "--rm", "steps:1", "ls", "/x").returncode != 0


def test_every_workdir_is_made_and_has_one_history_entry(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(
        tmp_path, "FROM busybox\nWORKDIR /a\nWORKDIR /b\nRUN ls -d /a /b\nWORKDIR /c/d\nWORKDIR /e\n"
    )
    done = build(build_env, ctx, "-t", "dirs:1")
    assert done.returncode == 0, done.stderr
    assert build_env.ok("run", "--rm", "dirs:1", "ls", "-d", "/a", "/b", "/c/d", "/e") == "/a\n/b\n/c/d\n/e\n"

    def history(ref: str) -> list[str]:
        return build_env.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", ref).splitlines()

    assert len(history("dirs:1")) == len(history("busybox")) + 5  # one entry per instruction


def test_intermediate_images_show_only_with_all_and_go_with_their_image(build_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = context(tmp_path, "FROM busybox\nRUN echo 1 > /one\nENV X=1\nRUN echo 2 > /two\n")

    def listed(*flags: str) -> set[str]:
        return set(build_env.ok("images", "-q", "--no-trunc", *flags).split())

    before = listed("-a")
    done = build(build_env, ctx, "-q")
    assert done.returncode == 0, done.stderr
    image = done.stdout.strip()
    made = listed("-a") - before
    assert image in made
    assert len(made) >= 3  # the final image and the steps' images under it
    assert listed() - before == {image}  # as docker: its dangling result shows, the steps do not
    pruned = build_env.ok("image", "prune", "-f")
    assert all(i in pruned for i in made)  # the dangling image went, and its untagged parents with it
    assert listed("-a") == before
    assert build(build_env, ctx, "-q", "-t", "inter:1").returncode == 0  # the cache that named them misses
    removed = build_env.ok("rmi", "inter:1")
    assert removed.count("Deleted: ") >= 3  # as docker's rmi: the untagged parents go with the image
    assert listed("-a") == before
