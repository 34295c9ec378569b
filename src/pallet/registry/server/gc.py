"""``pallet registry garbage-collect``: docker-registry's mark and sweep over the storage directory.

Mark: every manifest revision of every repository is marked, with the blobs
it names (config and layers) and, for an index, its child manifests and what
they name; with ``delete_untagged`` a manifest no tag points at, and that no
tagged index of its repository names, is not marked but scheduled for deletion. Sweep: the
scheduled manifests lose their revision link (and their referrer entry), every
blob under ``blobs/`` that is not marked is deleted, and so is every
repository's layer link to a blob that is not marked. ``dry_run`` prints the
same lines and deletes nothing.

The lines are those of distribution's ``registry garbage-collect`` (the
repository name, ``<repo>: marking manifest <digest>``, ``<repo>: marking
blob <digest>``, ``manifest eligible for deletion: <digest>`` after the
repository's marks, ``N blobs marked, N blobs and N manifests eligible for
deletion``, ``blob eligible for deletion: <digest>``, and distribution 3's
``<repo>: layer link eligible for deletion: <digest>``), sorted where
distribution's order is a Go map's. Unlike distribution 2.8, an untagged
manifest that a tagged index of its repository names is kept (distribution
3 does the same; 2.8 deleted the platforms of its multi-arch images).

Distribution's collector must not run while the registry serves: a blob
uploaded for a manifest not yet pushed is unreferenced and would be taken.
Here the storage's lock enforces it (``Storage.exclusive``): the collector
holds it exclusively, a server holds it shared for as long as it serves, and
whichever comes second is refused with an error that says why.

A manifest that cannot be read (its blob missing or not a manifest) stops the
collection before anything is deleted: what it references is unknown, so no
blob may be called garbage.
"""

from __future__ import annotations

import os

from pallet.errors import DataLoss, InvalidArgument
from pallet.oci.digest import Digest
from pallet.oci.record import Record
from pallet.registry.server.errorcodes import RegistryError
from pallet.registry.server.manifests import parse_manifest
from pallet.registry.server.storage import Storage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["GcReport", "collect", "storage_dir_of"]


class GcReport(Record):
    """What a collection found (and, unless a dry run, deleted)."""

    marked: int
    blobs: tuple[Digest, ...]
    #: (repository, manifest digest) of the untagged manifests removed
    manifests: tuple[tuple[str, Digest], ...]
    #: (repository, blob digest) of the layer links removed
    layer_links: tuple[tuple[str, Digest], ...]
    #: bytes of the blobs removed
    bytes: int


# --- finding the storage -------------------------------------------------------------------------


def storage_dir_of(path: str) -> str:
    """The storage directory ``path`` names: the directory itself, or a config file's
    ``storage: filesystem: rootdirectory:`` (docker-registry's ``config.yml`` shape).

    ``InvalidArgument`` for a path that is neither, or a directory that holds no
    pallet registry (docker-registry's own ``docker/registry/v2`` layout included).
    """
    if not os.path.exists(path):
        raise InvalidArgument(
            f"{path}: no such file or directory; give the registry's storage directory or config file"
        )
    directory = path if os.path.isdir(path) else _rootdirectory(path)
    if os.path.isdir(os.path.join(directory, "docker", "registry", "v2")):
        raise InvalidArgument(
            f"{directory} holds docker-registry's own layout (docker/registry/v2), not pallet's; "
            "collect it with docker-registry garbage-collect"
        )
    if not (
        os.path.isdir(os.path.join(directory, "blobs"))
        and os.path.isdir(os.path.join(directory, "repositories"))
    ):
        raise InvalidArgument(
            f"{directory} is not a registry storage directory (no blobs/ and repositories/ in it); "
            "give the --storage directory of pallet registry serve"
        )
    return directory


def _rootdirectory(config: str) -> str:
    """``storage.filesystem.rootdirectory`` of a YAML config, read by indentation (that one key only)."""
    try:
        with open(config, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"cannot read config {config}: {exc}") from None
    path: list[tuple[int, str]] = []  # (indent, key) of the mapping we are in
    for number, raw in enumerate(lines, 1):
        text = raw.split(" #", 1)[0].rstrip()
        if not text.strip() or text.lstrip().startswith(("#", "-")) or ":" not in text:
            continue
        indent = len(text) - len(text.lstrip(" "))
        key, _, value = text.strip().partition(":")
        while path and path[-1][0] >= indent:
            path.pop()
        keys = [k for _, k in path] + [key.strip()]
        value = value.strip().strip("\"'")
        if keys == ["storage", "filesystem", "rootdirectory"]:
            if not value:
                raise InvalidArgument(f"{config}:{number}: storage.filesystem.rootdirectory is empty")
            return os.path.join(os.path.dirname(os.path.abspath(config)), value)
        if not value:
            path.append((indent, key.strip()))
    raise InvalidArgument(
        f"{config}: no storage.filesystem.rootdirectory; pallet's registry keeps its data in one directory, "
        "give that directory or a config that names it"
    )


# --- mark and sweep ------------------------------------------------------------------------------


def _digests(directory: str) -> Iterator[Digest]:
    """Digests named ``<directory>/<alg>/<hex>``, sorted; temp files and other names skipped."""
    try:
        algorithms = sorted(os.listdir(directory))
    except FileNotFoundError:
        return
    for algorithm in algorithms:
        try:
            leaves = sorted(os.listdir(os.path.join(directory, algorithm)))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for leaf in leaves:
            try:
                yield Digest.parse(f"{algorithm}:{leaf}")
            except InvalidArgument:
                continue


def _repo_dir(storage: Storage, name: str, *parts: str) -> str:
    return os.path.join(storage.root, "repositories", name, *parts)


def _read(
    storage: Storage, repository: str, digest: Digest
) -> tuple[tuple[Digest, ...], tuple[Digest, ...], Digest | None]:
    """(blobs, child manifests, subject) of manifest ``digest``; ``DataLoss`` if it cannot be read."""
    media_type = storage.manifest_type(repository, digest)
    try:
        with open(storage.blob_path(digest), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataLoss(
            f"{repository}: manifest {digest} is linked but its blob is missing; nothing was deleted "
            "(restore the blob or remove the revision link, then collect again)"
        ) from None
    try:
        parsed = parse_manifest(data, media_type or "")
    except RegistryError as exc:
        raise DataLoss(
            f"{repository}: manifest {digest} cannot be read ({exc}); nothing was deleted"
        ) from None
    return parsed.blobs, parsed.manifests, parsed.subject


def collect(
    storage: Storage,
    *,
    dry_run: bool = False,
    delete_untagged: bool = False,
    emit: Callable[[str], None] = lambda line: None,
) -> GcReport:
    """Mark and sweep ``storage`` (see the module docstring). The caller holds ``storage.exclusive()``."""
    marked: set[Digest] = set()
    subjects: dict[tuple[str, Digest], Digest | None] = {}
    repositories = storage.repositories()

    def mark_references(repository: str, digest: Digest) -> None:
        blobs, children, subject = _read(storage, repository, digest)
        subjects[(repository, digest)] = subject
        for child in (*blobs, *children):
            if child in marked:
                continue
            marked.add(child)
            emit(f"{repository}: marking blob {child}")
            if child in children and storage.manifest_type(repository, child) is not None:
                mark_references(repository, child)

    doomed_manifests: list[tuple[str, Digest]] = []
    for repository in repositories:
        emit(repository)
        tagged = {storage.resolve(repository, tag) for tag in storage.tags(repository)}
        untagged: list[Digest] = []
        for digest in _digests(_repo_dir(storage, repository, "_manifests", "revisions")):
            if delete_untagged and digest not in tagged:
                untagged.append(digest)
                continue
            emit(f"{repository}: marking manifest {digest} ")
            marked.add(digest)
            mark_references(repository, digest)
        # once the repository's tagged manifests are marked: an untagged one a tagged index names stays
        for digest in untagged:
            if digest in marked:
                continue
            emit(f"manifest eligible for deletion: {digest}")
            doomed_manifests.append((repository, digest))
            if (repository, digest) not in subjects:
                subjects[(repository, digest)] = _read(storage, repository, digest)[2]

    doomed_links = [
        (repository, digest)
        for repository in repositories
        for digest in _digests(_repo_dir(storage, repository, "_layers"))
        if digest not in marked
    ]
    doomed_blobs = [d for d in _digests(os.path.join(storage.root, "blobs")) if d not in marked]
    emit(
        f"\n{len(marked)} blobs marked, {len(doomed_blobs)} blobs and {len(doomed_manifests)} manifests "
        "eligible for deletion"
    )
    if not dry_run:
        for repository, digest in doomed_manifests:
            storage.delete_manifest(repository, digest, subjects[(repository, digest)])
    freed = 0
    for digest in doomed_blobs:
        emit(f"blob eligible for deletion: {digest}")
        if dry_run:
            continue
        path = storage.blob_path(digest)
        try:
            size = os.stat(path).st_size
            os.unlink(path)
        except FileNotFoundError:
            continue
        freed += size
    for repository, digest in doomed_links:
        emit(f"{repository}: layer link eligible for deletion: {digest}")
        if not dry_run:
            storage.delete_blob(repository, digest)
    return GcReport(
        marked=len(marked),
        blobs=tuple(doomed_blobs),
        manifests=tuple(doomed_manifests),
        layer_links=tuple(doomed_links),
        bytes=freed,
    )
