"""The build context without root: directories and stdin tars, ``-f``, ignore files, sources, COPY's two phases."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from pallet.build.cache import step_key
from pallet.build.context import open_context
from pallet.build.copying import place, resolve_owner, stage_sources
from pallet.errors import InvalidArgument, NotFound


def make(tmp_path: Path, files: dict[str, str]) -> Path:
    ctx = tmp_path / "ctx"
    for name, data in files.items():
        path = ctx / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data)
    return ctx


def test_a_directory_context_with_its_dockerignore(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"Dockerfile": "FROM x\n", "a.txt": "a", "b.log": "b", ".dockerignore": "*.log\n"})
    with open_context(str(ctx), dockerfile=None, pallet_root=str(tmp_path / "root")) as context:
        assert context.dockerfile == "FROM x\n"
        assert context.tree.matches("*") == [".dockerignore", "Dockerfile", "a.txt"]
        with pytest.raises(NotFound, match=r"excluded by \.dockerignore"):
            context.tree.matches("b.log")
        with pytest.raises(NotFound, match="nothere"):
            context.tree.matches("nothere")
        with pytest.raises(InvalidArgument, match="outside the build context"):
            context.tree.matches("../x")


def test_the_dockerfiles_own_ignore_file_wins(tmp_path: Path) -> None:
    ctx = make(
        tmp_path,
        {
            "app.Dockerfile": "FROM y\n",
            "app.Dockerfile.dockerignore": "a.txt\n",
            ".dockerignore": "b.txt\n",
            "a.txt": "",
            "b.txt": "",
        },
    )
    with open_context(
        str(ctx), dockerfile=str(ctx / "app.Dockerfile"), pallet_root=str(tmp_path / "r")
    ) as context:
        assert context.dockerfile == "FROM y\n"
        assert context.ignore.ignored("a.txt")
        assert not context.ignore.ignored("b.txt")


def test_a_tar_on_stdin_is_the_context_and_is_removed_after(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM z\n"), ("sub/f", b"f")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    stdin = io.BytesIO(gzip.compress(raw.getvalue()))
    root = tmp_path / "root"
    with open_context("-", dockerfile=None, pallet_root=str(root), stdin=stdin) as context:  # type: ignore[arg-type]
        assert context.dockerfile == "FROM z\n"
        assert context.tree.matches("sub/f") == ["sub/f"]
        temp = context.root
    assert not os.path.exists(temp)


def test_missing_context_and_dockerfile_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="not found"):
        open_context(str(tmp_path / "nope"), dockerfile=None, pallet_root=str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match="cannot find Dockerfile"):
        open_context(str(tmp_path / "empty"), dockerfile=None, pallet_root=str(tmp_path))
    with pytest.raises(InvalidArgument, match="both build context and dockerfile"):
        open_context("-", dockerfile="-", pallet_root=str(tmp_path), stdin=io.BytesIO())  # type: ignore[arg-type]


def test_copy_stages_then_places_by_dockers_destination_rules(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"Dockerfile": "", "one": "1", "dir/a": "a", "dir/sub/b": "b"})
    os.chmod(ctx / "one", 0o700)
    root = tmp_path / "rootfs"
    (root / "existing").mkdir(parents=True)
    with open_context(str(ctx), dockerfile=None, pallet_root=str(tmp_path / "r")) as context:
        tree = context.tree
        staged = stage_sources(
            [(tree, "one"), (tree, "dir")], heredocs={}, unpack=False, parents=False, excludes=()
        )
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
        try:
            place(staged, root_fd, "/dest/", owner=None, chmod=None, parents=False, mtime_ns=None)
            single = stage_sources([(tree, "one")], heredocs={}, unpack=False, parents=False, excludes=())
            place(single, root_fd, "/renamed", owner=None, chmod=0o644, parents=False, mtime_ns=None)
            into = stage_sources([(tree, "one")], heredocs={}, unpack=False, parents=False, excludes=())
            place(into, root_fd, "/existing", owner=None, chmod=None, parents=False, mtime_ns=None)
            with pytest.raises(InvalidArgument, match="must be a directory and end with a /"):
                place(staged, root_fd, "/notadir", owner=None, chmod=None, parents=False, mtime_ns=None)
        finally:
            os.close(root_fd)
    assert (root / "dest" / "one").read_text() == "1"
    assert (root / "dest" / "one").stat().st_mode & 0o777 == 0o700
    assert (root / "dest" / "a").read_text() == "a"  # a directory's contents, not the directory
    assert (root / "dest" / "sub" / "b").read_text() == "b"
    assert (root / "renamed").read_text() == "1"
    assert (root / "renamed").stat().st_mode & 0o777 == 0o644
    assert (root / "existing" / "one").read_text() == "1"


def test_the_content_hash_ignores_mtimes_but_not_bytes_or_modes(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"Dockerfile": "", "f": "x"})

    def digest() -> str:
        with open_context(str(ctx), dockerfile=None, pallet_root=str(tmp_path / "r")) as context:
            staged = stage_sources(
                [(context.tree, "f")], heredocs={}, unpack=False, parents=False, excludes=()
            )
            staged.tar.close()
            return staged.digest

    first = digest()
    os.utime(ctx / "f", (5, 5))
    assert digest() == first
    os.chmod(ctx / "f", 0o755)
    assert digest() != first
    os.chmod(ctx / "f", 0o644)
    (ctx / "f").write_text("y")
    assert digest() != first


def test_step_keys_chain_parent_instruction_args_and_content() -> None:
    base = step_key("parent", "RUN x")
    assert base == step_key("parent", "RUN x")
    assert base != step_key("other", "RUN x")
    assert base != step_key("parent", "RUN x", [("A", "1")])
    assert step_key("p", "COPY", content="sha256:a") != step_key("p", "COPY", content="sha256:b")


def test_chown_names_come_from_the_images_files(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("app:x:1000:1001::/home/app:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("staff:x:50:\n")
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        assert resolve_owner(fd, "app") == (1000, 1001)
        assert resolve_owner(fd, "app:staff") == (1000, 50)
        assert resolve_owner(fd, "7:8") == (7, 8)
        with pytest.raises(NotFound, match="no such user: ghost"):
            resolve_owner(fd, "ghost")
    finally:
        os.close(fd)


def test_a_dockerfile_on_stdin_is_the_dockerfile_with_an_empty_context(tmp_path: Path) -> None:
    stdin = io.BytesIO(b"FROM busybox\n" + b"# padding past the sniffed bytes\n" * 40)
    root = tmp_path / "root"
    with open_context("-", dockerfile=None, pallet_root=str(root), stdin=stdin) as context:  # type: ignore[arg-type]
        assert context.dockerfile.startswith("FROM busybox\n")
        assert context.dockerfile.count("# padding") == 40
        assert context.tree.matches("*") == ["Dockerfile"]
        temp = context.root
    assert not os.path.exists(temp)
    with pytest.raises(InvalidArgument, match="-f"):
        open_context("-", dockerfile="other", pallet_root=str(root), stdin=io.BytesIO(b"FROM x\n"))  # type: ignore[arg-type]


def test_add_of_a_directory_copies_its_contents(tmp_path: Path) -> None:
    # ADD's archive check must let a directory (the whole context, ".") through as a directory
    ctx = make(tmp_path, {"Dockerfile": "", "a": "a", "sub/b": "b"})
    root = tmp_path / "rootfs"
    root.mkdir()
    with open_context(str(ctx), dockerfile=None, pallet_root=str(tmp_path / "r")) as context:
        staged = stage_sources([(context.tree, ".")], heredocs={}, unpack=True, parents=False, excludes=())
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
        try:
            place(staged, root_fd, "/dest", owner=None, chmod=None, parents=False, mtime_ns=None)
        finally:
            os.close(root_fd)
    assert (root / "dest" / "a").read_text() == "a"
    assert (root / "dest" / "sub" / "b").read_text() == "b"
