"""A conformance suite for ``pallet.image.snapshots.Snapshotter``: one set of checks every driver passes.

As containerd's ``snapshots/testsuite``: each check takes a ``SnapshotterCase``
(a fresh root, and a way to open the implementation under test on it) and
asserts an observable effect through the protocol only: parents and children,
commit making a snapshot read-only, a parent with children refusing removal,
usage, whiteouts seen through the mounts, views, and calls killed midway
leaving nothing a later call trips on. Use it as::

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_snapshotter_conformance(check, tmp_path):
        with SnapshotterCase(tmp_path, my_factory) as case:
            check(case)

Trees are read and written through the mounts a snapshotter returns. With
root they are really mounted (and unmounted in a ``finally``); without root a
single bind mount stands for its source directory, a writable overlay for its
``upperdir``, and a check that needs a real mount (an overlay to read, a
read-only mount to write into, a deletion to whiteout) is skipped.
"""

from __future__ import annotations

import errno
import os
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest

from pallet.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound, Unsupported
from pallet.image.metadata import open_database
from pallet.image.snapshots import Mount, Snapshotter, mount, unmount, writable_dir

__all__ = ["CHECKS", "SnapshotterCase"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Self

    from pallet.database import Database

    #: opens the implementation under test on a root, keeping its rows in the given database
    Factory = Callable[[str, Database], Snapshotter]


class SnapshotterCase:
    """A fresh root for one check, the snapshotter under test on it, and helpers to use its mounts."""

    def __init__(self, tmp: Path, factory: Factory) -> None:
        self.root = tmp / "root"
        self.scratch = tmp / "mnt"
        self.root.mkdir()
        self.scratch.mkdir()
        self._factory = factory
        self._dbs: list[Database] = []
        self._mounted: list[Path] = []
        self.snaps = self.open()

    def open(self) -> Snapshotter:
        """Another instance on the same root, with its own database connection (as another process has)."""
        db = open_database(str(self.root))
        self._dbs.append(db)
        return self._factory(str(self.root), db)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for target in reversed(self._mounted):
            unmount(target)
        for db in self._dbs:
            db.close()

    # --- trees through mounts -------------------------------------------------------------------

    @property
    def can_mount(self) -> bool:
        return os.geteuid() == 0

    @contextmanager
    def mounted(self, mounts: list[Mount]) -> Iterator[Path]:
        """The tree ``mounts`` describe, mounted on a scratch dir for the block (root), else see the module docstring."""
        if not self.can_mount:
            if len(mounts) == 1 and mounts[0].type == "bind":
                yield Path(mounts[0].source)
                return
            pytest.skip("mounting an overlay needs root")
        target = self.scratch / str(len(self._mounted))
        target.mkdir()
        self._mounted.append(target)
        try:
            mount(mounts, target)
            yield target
        finally:
            unmount(target)
            self._mounted.remove(target)
            target.rmdir()

    def write(self, key: str, files: dict[str, bytes | None]) -> None:
        """Write ``files`` into active snapshot ``key`` through its mounts; None deletes (a whiteout)."""
        mounts = self.snaps.mounts(key)
        if any(data is None for data in files.values()) and not self.can_mount:
            pytest.skip("deleting a parent's file needs a real mount (root)")
        if self.can_mount:
            with self.mounted(mounts) as tree:
                _write(tree, files)
        else:
            _write(Path(writable_dir(mounts)), files)

    def read(self, key: str) -> dict[str, bytes]:
        """Every file (relative path -> content) and dir (path + "/" -> b"") snapshot ``key`` shows."""
        with self.mounted(self.snaps.mounts(key)) as tree:
            return _read(tree)

    def layer(self, name: str, parent: str | None, files: dict[str, bytes | None]) -> None:
        """A committed snapshot ``name`` on ``parent``: prepare, write ``files``, commit."""
        key = f"{name}-active"
        self.snaps.prepare(key, parent)
        self.write(key, files)
        self.snaps.commit(name, key)


def _write(tree: Path, files: dict[str, bytes | None]) -> None:
    for name, data in files.items():
        path = tree / name
        if data is None:
            if path.is_dir() and not path.is_symlink():
                for child in sorted(path.rglob("*"), reverse=True):
                    child.rmdir() if child.is_dir() and not child.is_symlink() else child.unlink()
                path.rmdir()
            else:
                path.unlink()
        elif name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def _read(tree: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for path in tree.rglob("*"):
        rel = str(path.relative_to(tree))
        if path.is_dir() and not path.is_symlink():
            out[rel + "/"] = b""
        else:
            out[rel] = path.read_bytes()
    return out


# --- the checks ---------------------------------------------------------------------------------


def prepare_on_nothing_gives_an_empty_writable_tree(case: SnapshotterCase) -> None:
    mounts = case.snaps.prepare("a", None)
    assert mounts == case.snaps.mounts("a")
    assert case.read("a") == {}
    case.write("a", {"f": b"1"})
    assert case.read("a") == {"f": b"1"}
    info = case.snaps.get("a")
    assert (info.kind, info.parent) == ("active", None)


def children_see_their_ancestors_files_and_their_own(case: SnapshotterCase) -> None:
    case.layer("base", None, {"etc/": b"", "etc/one": b"1", "keep": b"k"})
    case.layer("mid", "base", {"etc/two": b"2", "keep": b"changed"})
    case.snaps.prepare("top", "mid")
    case.write("top", {"etc/three": b"3"})
    assert case.read("top") == {
        "etc/": b"",
        "etc/one": b"1",
        "etc/two": b"2",
        "etc/three": b"3",
        "keep": b"changed",
    }
    assert case.read("mid") == {"etc/": b"", "etc/one": b"1", "etc/two": b"2", "keep": b"changed"}
    assert case.read("base") == {"etc/": b"", "etc/one": b"1", "keep": b"k"}  # a child's change stays its own
    assert case.snaps.get("top").parent == "mid"
    assert case.snaps.get("mid").parent == "base"


def commit_makes_the_snapshot_read_only(case: SnapshotterCase) -> None:
    case.snaps.prepare("work", None)
    case.write("work", {"f": b"1"})
    info = case.snaps.commit("layer", "work")
    assert (info.key, info.kind, case.snaps.stat("work")) == ("layer", "committed", None)
    for m in case.snaps.mounts("layer"):
        assert "ro" in m.options or not any(o.startswith("upperdir=") for o in m.options)
    assert "rw" not in {o for m in case.snaps.mounts("layer") for o in m.options}
    with pytest.raises(FailedPrecondition):
        case.snaps.commit("again", "layer")
    with pytest.raises(NotFound):
        case.snaps.commit("other", "work")
    if case.can_mount:
        with (
            case.mounted(case.snaps.mounts("layer")) as tree,
            pytest.raises(OSError, match="Read-only") as err,
        ):
            (tree / "g").write_bytes(b"x")
        assert err.value.errno == errno.EROFS
    assert case.read("layer") == {"f": b"1"}


def only_committed_snapshots_can_be_parents(case: SnapshotterCase) -> None:
    case.layer("base", None, {"f": b"1"})
    case.snaps.prepare("active", "base")
    case.snaps.view("look", "base")
    for parent in ("active", "look"):
        with pytest.raises(InvalidArgument, match="not committed"):
            case.snaps.prepare("child", parent)
    with pytest.raises(NotFound):
        case.snaps.prepare("child", "nothing")
    with pytest.raises(AlreadyExists):
        case.snaps.prepare("active", "base")
    with pytest.raises(AlreadyExists):
        case.snaps.view("look", None)
    assert case.snaps.stat("child") is None


def committing_a_taken_name_is_already_exists_and_keeps_both(case: SnapshotterCase) -> None:
    case.layer("layer", None, {"f": b"first"})
    other = case.open()  # as another process would, on its own connection
    other.prepare("late", None)
    case.write("late", {"f": b"second"})
    with pytest.raises(AlreadyExists):
        other.commit("layer", "late")
    assert case.read("layer") == {"f": b"first"}
    assert case.snaps.get("late").kind == "active"
    assert case.read("late") == {"f": b"second"}
    case.snaps.remove("late")
    assert case.snaps.stat("late") is None


def removing_a_parent_with_children_is_refused(case: SnapshotterCase) -> None:
    case.layer("base", None, {"f": b"1"})
    case.layer("child", "base", {"g": b"2"})
    case.snaps.view("look", "child")
    with pytest.raises(Conflict):
        case.snaps.remove("base")
    with pytest.raises(Conflict):
        case.snaps.remove("child")
    assert case.read("child") == {"f": b"1", "g": b"2"}
    for key in ("look", "child", "base"):
        case.snaps.remove(key)
    assert list(case.snaps.walk()) == []
    with pytest.raises(NotFound):
        case.snaps.remove("base")


def usage_counts_the_bytes_and_inodes_a_snapshot_holds(case: SnapshotterCase) -> None:
    case.snaps.prepare("a", None)
    assert case.snaps.usage("a").size == 0
    assert case.snaps.usage("a").inodes == 0
    case.write("a", {"dir/": b"", "dir/f": b"x" * 1000, "g": b"y" * 24})
    if not case.can_mount:
        os.link(
            Path(writable_dir(case.snaps.mounts("a"))) / "g", Path(writable_dir(case.snaps.mounts("a"))) / "h"
        )
    else:
        with case.mounted(case.snaps.mounts("a")) as tree:
            os.link(tree / "g", tree / "h")
    usage = case.snaps.usage("a")
    assert (usage.size, usage.inodes) == (1024, 3)  # dir, f, and g once for its two names
    case.snaps.commit("layer", "a")
    assert case.snaps.usage("layer") == usage
    case.snaps.view("look", "layer")
    assert (case.snaps.usage("look").size, case.snaps.usage("look").inodes) == (0, 0)
    with pytest.raises(NotFound):
        case.snaps.usage("a")


def whiteouts_are_seen_through_the_mounts(case: SnapshotterCase) -> None:
    case.layer(
        "base",
        None,
        {"gone": b"1", "kept": b"2", "dir/": b"", "dir/old": b"3", "dir/sub/": b"", "dir/sub/x": b""},
    )
    # delete a file, and replace a dir by one of the same name (an opaque dir)
    case.layer("child", "base", {"gone": None, "dir": None})
    case.layer("grandchild", "child", {"dir/new": b"4"})
    assert case.read("child") == {"kept": b"2"}
    assert case.read("grandchild") == {"kept": b"2", "dir/": b"", "dir/new": b"4"}
    case.snaps.view("look", "grandchild")
    assert case.read("look") == {"kept": b"2", "dir/": b"", "dir/new": b"4"}
    assert case.read("base")["gone"] == b"1"


def a_view_shows_its_parent_read_only_and_cannot_be_committed(case: SnapshotterCase) -> None:
    case.layer("base", None, {"f": b"1"})
    mounts = case.snaps.view("look", "base")
    assert mounts == case.snaps.mounts("look")
    assert case.snaps.get("look").kind == "view"
    assert case.snaps.get("look").parent == "base"
    assert "rw" not in {o for m in mounts for o in m.options}
    assert not any(o.startswith("upperdir=") for m in mounts for o in m.options)
    assert case.read("look") == {"f": b"1"}
    with pytest.raises(FailedPrecondition):
        case.snaps.commit("name", "look")
    case.snaps.view("empty", None)
    assert case.read("empty") == {}


def walk_lists_every_snapshot_with_its_kind_and_parent(case: SnapshotterCase) -> None:
    case.layer("base", None, {})
    case.snaps.prepare("ctr", "base")
    case.snaps.view("look", "base")
    assert {(i.key, i.kind, i.parent) for i in case.snaps.walk()} == {
        ("base", "committed", None),
        ("ctr", "active", "base"),
        ("look", "view", "base"),
    }
    assert {i.key for i in case.open().walk()} == {"base", "ctr", "look"}  # seen by another connection


def commit_onto_a_parent_rebases_where_supported(case: SnapshotterCase) -> None:
    case.layer("base", None, {"f": b"1"})
    case.snaps.prepare("own", None)
    case.write("own", {"g": b"2"})
    if not case.snaps.rebases:
        with pytest.raises(Unsupported):
            case.snaps.commit("layer", "own", onto="base")
        assert case.snaps.get("own").kind == "active"
        return
    info = case.snaps.commit("layer", "own", onto="base")
    assert info.parent == "base"
    assert case.read("layer") == {"f": b"1", "g": b"2"}
    case.snaps.prepare("x", None)
    with pytest.raises(NotFound):
        case.snaps.commit("other", "x", onto="missing")
    assert case.snaps.get("x").kind == "active"


def _run_killed(case: SnapshotterCase, nth_rename: int, work: Callable[[Snapshotter], None]) -> bool:
    """Run ``work`` in a child that SIGKILLs itself right after its ``nth_rename``-th ``os.rename``.

    Returns whether the child was killed (False: ``work`` did fewer renames and finished).
    """
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            real = os.rename
            count = 0

            def rename(src: str, dst: str, *args: object, **kwargs: object) -> None:
                nonlocal count
                real(src, dst)
                count += 1
                if count == nth_rename:
                    os.kill(os.getpid(), signal.SIGKILL)

            os.rename = rename  # type: ignore[assignment]
            work(case.open())
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return True
    assert os.WEXITSTATUS(status) == 0, "the child failed before it was killed"
    return False


def killed_calls_leave_nothing_a_later_call_trips_on(case: SnapshotterCase) -> None:
    case.layer("base", None, {"f": b"1"})

    def prepare(snaps: Snapshotter) -> None:
        snaps.prepare("ctr", "base")

    def commit(snaps: Snapshotter) -> None:
        snaps.prepare("work", None)
        snaps.commit("layer", "work")

    def remove(snaps: Snapshotter) -> None:
        snaps.remove("ctr")

    for name, work in (("prepare", prepare), ("commit", commit), ("remove", remove)):
        for nth in (1, 2, 3):
            if name == "remove" and case.snaps.stat("ctr") is None:
                case.snaps.prepare("ctr", "base")
            killed = _run_killed(case, nth, work)
            later = case.open()  # a later process
            later.cleanup_leftovers()
            # whatever the kill left, the same calls work again
            for key in ("ctr", "work", "layer"):
                if later.stat(key) is not None:
                    later.remove(key)
            later.prepare("ctr", "base")
            later.prepare("work", None)
            later.commit("layer", "work")
            assert case.read("ctr") == {"f": b"1"}
            for key in ("ctr", "layer"):
                later.remove(key)
            assert {i.key for i in later.walk()} == {"base"}, (name, nth, killed)
            if not killed:
                break
    assert case.snaps.cleanup_leftovers() == 0


#: every check, in the order they are best read
CHECKS: tuple[Callable[[SnapshotterCase], None], ...] = (
    prepare_on_nothing_gives_an_empty_writable_tree,
    children_see_their_ancestors_files_and_their_own,
    commit_makes_the_snapshot_read_only,
    only_committed_snapshots_can_be_parents,
    committing_a_taken_name_is_already_exists_and_keeps_both,
    removing_a_parent_with_children_is_refused,
    usage_counts_the_bytes_and_inodes_a_snapshot_holds,
    whiteouts_are_seen_through_the_mounts,
    a_view_shows_its_parent_read_only_and_cannot_be_committed,
    walk_lists_every_snapshot_with_its_kind_and_parent,
    commit_onto_a_parent_rebases_where_supported,
    killed_calls_leave_nothing_a_later_call_trips_on,
)
