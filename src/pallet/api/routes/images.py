"""Image routes: list, inspect, history, tag, delete, pull/import, push, save, load, search, prune, commit.

docker's shapes onto the image store (``pallet.image``), the registry
client (``pallet.registry.client``) and, for prune and commit, the engine's
surface. Long work (pull, push, load, import) answers docker's JSON
progress stream (``api/progress.py``): a client that goes away stops it, and
nothing is left half-stored. Each verb records docker's image event
(``pull``, ``push``, ``tag``, ``untag``, ``delete``, ``import``, ``load``,
``save``) for ``GET /events`` and ``pallet events``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pallet.api.messages import Empty, Json, Request, Response, Stream, WholeBody
from pallet.api.progress import JsonProgress, collected, messages
from pallet.api.routes.volumes import filter_texts
from pallet.api.routing import RouteTable
from pallet.errors import InvalidArgument, NotFound, PalletError, Unauthenticated

if TYPE_CHECKING:
    from pallet.image.store import ImageRecord, ImageStore
    from pallet.oci.reference import Reference
    from pallet.registry.client.credentials import Credentials
    from pallet.registry.client.transport import Transport

__all__ = ["ROUTES"]

ROUTES = RouteTable()

_IMAGE_FILTERS = ("before", "dangling", "label", "reference", "since")


def _store(request: Request) -> ImageStore:
    from pallet.image.store import ImageStore

    return ImageStore.open(request.service.root)


def _resolve(store: ImageStore, name: str) -> ImageRecord:
    """The image ``name`` names; ``NotFound`` in docker's words, which clients match (docker-py's ImageNotFound)."""
    try:
        return store.resolve(name)
    except NotFound:
        raise NotFound(f"No such image: {name}") from None


def _event(request: Request, action: str, actor: str, name: str = "") -> None:
    request.service.record_event("image", action, actor, {"name": name or actor})


def _unix(text: str | None) -> int | None:
    """An RFC 3339 time (nanoseconds allowed) as Unix seconds; None if absent or unreadable."""
    import re
    from datetime import datetime

    if not text:
        return None
    # datetime takes at most microseconds: cut a longer fraction
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    try:
        return int(datetime.fromisoformat(trimmed).timestamp())
    except ValueError:
        return None


def _created(record: ImageRecord) -> int:
    created = _unix(record.created)
    return int(record.added) if created is None else created


# --- list, inspect, history -------------------------------------------------------------------------


def _reference_matches(patterns: list[str], ref: Reference) -> bool:
    from fnmatch import fnmatchcase

    names = (ref.familiar_name(), ref.familiar_string(), str(ref))
    for pattern in patterns:
        if ":" in pattern.rsplit("/", 1)[-1]:
            if any(fnmatchcase(n, pattern) for n in names[1:]):
                return True
        elif any(fnmatchcase(n, pattern) for n in names[:1]) or fnmatchcase(ref.name, pattern):
            return True
    return False


class _ImageFilters:
    """docker's image list filters: ``dangling``, ``label``, ``reference``, ``before``, ``since``."""

    def __init__(self, store: ImageStore, filters: dict[str, list[str]]) -> None:
        for key in filters:
            if key not in _IMAGE_FILTERS:
                raise InvalidArgument(f"invalid filter '{key}'")
        self.filters = filters
        self.before = [_created(store.resolve(n)) for n in filters.get("before", [])]
        self.since = [_created(store.resolve(n)) for n in filters.get("since", [])]
        self._labels = store.config

    def matches(self, record: ImageRecord) -> bool:
        f = self.filters
        tagged = [r for r in record.references if r.tag is not None]
        if "dangling" in f and any((not tagged) != (v in ("1", "true")) for v in f["dangling"]):
            return False
        if "reference" in f and not any(_reference_matches(f["reference"], r) for r in record.references):
            return False
        created = _created(record)
        if any(created >= b for b in self.before) or any(created <= s for s in self.since):
            return False
        if "label" in f:
            config = self._labels(record.id).config
            labels = dict(config.labels) if config is not None else {}
            for want in f["label"]:
                key, sep, value = want.partition("=")
                if key not in labels or (sep and labels[key] != value):
                    return False
        return True


def _summary(store: ImageStore, record: ImageRecord, references: list[str]) -> dict[str, Any]:
    """docker's image summary; with a ``reference`` filter, only the names it matches (as dockerd)."""
    from pallet.engine.service import image_size

    config = store.config(record.id).config
    size = image_size(store, record)
    names = [r for r in record.references if not references or _reference_matches(references, r)]
    tags = [r.familiar_string() for r in names if r.tag is not None]
    digests = [r.familiar_string() for r in names if r.digest is not None]
    return {
        "Containers": -1,
        "Created": _created(record),
        "Id": str(record.id),
        "Labels": dict(config.labels) if config is not None and config.labels else None,
        "ParentId": str(record.parent) if record.parent is not None else "",
        "RepoDigests": digests or None,
        "RepoTags": tags or None,
        "SharedSize": -1,
        "Size": size,
        "VirtualSize": size,
    }


@ROUTES.route("GET", "/images/json")
def list_images(request: Request) -> Response:
    with _store(request) as store:
        filters = _ImageFilters(store, request.filters())
        records = sorted(store.list_images(), key=lambda r: (_created(r), r.added), reverse=True)
        references = filters.filters.get("reference", [])
        return Json([_summary(store, r, references) for r in records if filters.matches(r)])


@ROUTES.route("GET", "/images/search")
def search(request: Request) -> Response:
    """The registry's ``/v2/_catalog`` filtered by the term (registries have no search API of their own)."""
    from pallet.registry.client import hosts
    from pallet.registry.client.repository import Registry

    term = request.arg("term")
    if not term:
        raise InvalidArgument("a search term is required (term)")
    limit = request.integer("limit", 25) or 25
    if not 1 <= limit <= 100:
        raise InvalidArgument(f"limit {limit} is outside the range of [1, 100]")
    for key in request.filters():
        if key not in ("is-official", "is-automated", "stars"):
            raise InvalidArgument(f"invalid filter '{key}'")
    first, slash, rest = term.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry_name, query = first, rest
    else:
        registry_name, query = "docker.io", term
    transport = _transport(request)
    try:
        registry = Registry(transport, hosts.normalize(registry_name), _credentials(request, registry_name))
        response = registry.request("GET", "/v2/_catalog?n=1000", scopes=("registry:catalog:*",))
        if response.status != 200:
            from pallet.errors import Unavailable

            raise Unavailable(f"the registry {registry_name} answered {response.status} to its catalog")
        try:
            doc = json.loads(response.data or b"{}")
        except ValueError:
            doc = {}
        names = (doc.get("repositories") or []) if isinstance(doc, dict) else []
    finally:
        transport.close()
    found = [n for n in names if isinstance(n, str) and query in n][:limit]
    prefix = "" if registry_name == "docker.io" else registry_name + "/"
    return Json(
        [
            {
                "name": prefix + n,
                "description": "",
                "star_count": 0,
                "is_official": False,
                "is_automated": False,
            }
            for n in found
        ]
    )


@ROUTES.route("GET", "/images/get")
def save_many(request: Request) -> Response:
    return _save(request, request.args("names"))


@ROUTES.route("GET", "/images/{name*}/json")
def inspect(request: Request) -> Response:
    from pallet.engine.service import inspect_image

    with _store(request) as store:
        return Json(inspect_image(store, str(_resolve(store, request.params["name"]).id)))


@ROUTES.route("GET", "/images/{name*}/history")
def history(request: Request) -> Response:
    with _store(request) as store:
        record = _resolve(store, request.params["name"])
        tags = [r.familiar_string() for r in record.references if r.tag is not None]
        out = []
        for i, entry in enumerate(store.history(record.id)):
            out.append(
                {
                    "Id": str(entry.image_id) if entry.image_id is not None else "<missing>",
                    "Created": _unix(entry.created) or 0,
                    "CreatedBy": entry.created_by or "",
                    "Tags": tags if i == 0 else None,
                    "Size": entry.size,
                    "Comment": entry.comment or "",
                }
            )
        return Json(out)


@ROUTES.route("GET", "/images/{name*}/get")
def save_one(request: Request) -> Response:
    return _save(request, [request.params["name"]])


# --- names ----------------------------------------------------------------------------------------


@ROUTES.route("POST", "/images/{name*}/tag")
def tag(request: Request) -> Response:
    from pallet.oci.reference import parse

    repo = request.arg("repo")
    if not repo:
        raise InvalidArgument("repository name (repo) is required")
    target = parse(repo, default_tag=False)
    if target.digest is not None or (target.tag is not None and request.arg("tag")):
        raise InvalidArgument(f"invalid repository name {repo!r}: give the tag as the tag parameter")
    new = target.with_tag(request.arg("tag") or target.tag or "latest")
    with _store(request) as store:
        record = _resolve(store, request.params["name"])
        store.tag(record.id, new)
    _event(request, "tag", str(record.id), new.familiar_string())
    return Empty(status=201)


@ROUTES.route("DELETE", "/images/{name*}")
def remove(request: Request) -> Response:
    with _store(request) as store:
        _resolve(store, request.params["name"])
        report = store.remove_image(request.params["name"], force=request.flag("force"))
    out: list[dict[str, str]] = []
    for ref in report.untagged:
        out.append({"Untagged": ref.familiar_string()})
        _event(request, "untag", ref.familiar_string())
    for digest in report.deleted:
        out.append({"Deleted": str(digest)})
        out.extend({"Deleted": str(layer)} for layer in report.layers_of(digest))
        _event(request, "delete", str(digest))
    return Json(out)


@ROUTES.route("POST", "/images/prune")
def prune(request: Request) -> Response:
    from pallet.engine.service import prune_filters

    texts = filter_texts(request)
    dangling = [t.partition("=")[2].lower() for t in texts if t.startswith("dangling=")]
    everything = any(v in ("0", "false") for v in dangling)
    report = request.service.prune_images(
        all=everything, filters=prune_filters([t for t in texts if not t.startswith("dangling=")])
    )
    deleted = [{"Untagged": r.familiar_string()} for r in report.untagged]
    deleted += [{"Deleted": str(d)} for d in report.deleted]
    return Json({"ImagesDeleted": deleted or None, "SpaceReclaimed": report.reclaimed})


# --- registries -----------------------------------------------------------------------------------


def _transport(request: Request) -> Transport:
    from pathlib import Path

    from pallet.registry.client import hosts
    from pallet.registry.client.transport import Transport

    return Transport(insecure=hosts.insecure_list(Path(request.service.root), ()))


def _credentials(request: Request, registry: str) -> Credentials | None:
    """``X-Registry-Auth`` (base64url JSON: username, password or identitytoken), else the service's own."""
    from pallet.registry.client import credentials

    header = request.headers.get("X-Registry-Auth", "").strip()
    if header:
        try:
            doc = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        except (ValueError, TypeError):
            raise InvalidArgument("invalid X-Registry-Auth header: not base64url JSON") from None
        if not isinstance(doc, dict):
            raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
        found = credentials.Credentials(
            username=str(doc.get("username") or ""),
            password=str(doc.get("password") or ""),
            identity_token=str(doc.get("identitytoken") or ""),
        )
        if found.username or found.password or found.identity_token:
            return found
    return credentials.lookup(registry)


@ROUTES.route("POST", "/images/create")
def create(request: Request) -> Response:
    if request.arg("fromSrc"):
        return _import(request)
    from pallet.oci.reference import parse

    name = request.arg("fromImage")
    if not name:
        raise InvalidArgument("fromImage or fromSrc is required")
    tag_or_digest = request.arg("tag")
    reference = parse(name, default_tag=not tag_or_digest)
    if tag_or_digest:
        reference = (
            parse(f"{reference.name}@{tag_or_digest}")
            if tag_or_digest.startswith("sha256:")
            else reference.with_tag(tag_or_digest)
        )
    platform_text = request.arg("platform")
    creds = _credentials(request, reference.domain)
    root = request.service.root
    progress = JsonProgress("Downloading")

    def work() -> None:
        from pathlib import Path

        from pallet.image.store import ImageStore
        from pallet.registry.client import hosts
        from pallet.registry.client.platforms import parse_platform
        from pallet.registry.client.pull import pull
        from pallet.registry.client.sources import BlobSources
        from pallet.registry.client.transport import Transport

        platform = parse_platform(platform_text) if platform_text else None
        transport = Transport(insecure=hosts.insecure_list(Path(root), ()))
        try:
            with ImageStore.open(root) as store:
                sources = BlobSources(Path(root))
                try:
                    pull(
                        store,
                        reference,
                        transport=transport,
                        credentials=creds,
                        progress=progress,
                        platform=platform,
                        sources=sources,
                    )
                except Unauthenticated as e:
                    # dockerd's words and status (a 404): a 401 would make the docker CLI ask for a login
                    raise NotFound(
                        f"pull access denied for {reference.familiar_name()}, repository does not exist "
                        f"or may require 'docker login': {e.message}"
                    ) from None
                finally:
                    sources.close()
        finally:
            transport.close()
        from pallet.engine.service import record_event

        record_event(
            root, "image", "pull", reference.familiar_string(), {"name": reference.familiar_string()}
        )

    return Stream(
        messages(progress, work, held=lambda m: str(m.get("status", "")).startswith("Pulling from"))
    )


def _import(request: Request) -> Response:
    """``fromSrc=-``: a root filesystem tarball in the body becomes an image (``docker import``)."""
    from pallet.oci.reference import parse

    if request.arg("fromSrc") != "-":
        raise InvalidArgument(
            "importing from a URL is not supported: send the tarball as the body (fromSrc=-)"
        )
    repo = request.arg("repo")
    ref = (
        parse(repo).with_tag(request.arg("tag"))
        if repo and request.arg("tag")
        else (parse(repo) if repo else None)
    )
    if ref is not None and ref.digest is not None:
        raise InvalidArgument(f'"{repo}": an imported image is named by a tag, not a digest')
    changes = request.args("changes")
    message = request.arg("message") or None
    platform_text = request.arg("platform")
    body = WholeBody(request.body)
    root = request.service.root
    progress = JsonProgress("Importing")

    def work() -> None:
        from pallet.image.importer import import_tarball
        from pallet.image.platforms import parse_platform
        from pallet.image.store import ImageStore

        with ImageStore.open(root) as store:
            record = import_tarball(
                store,
                body,
                source="-",
                ref=ref,
                changes=changes,
                message=message,
                platform=parse_platform(platform_text) if platform_text else None,
            )
        from pallet.engine.service import record_event

        record_event(root, "image", "import", str(record.id), {"name": str(record.id)})
        progress.put({"status": str(record.id)})

    def work_or_error() -> None:
        # dockerd answers 200 and says what is wrong with the archive in the stream (the docker CLI
        # prints it, docker-py raises ImageLoadError on it); nothing of a refused archive is kept
        try:
            work()
        except PalletError as e:
            progress.put({"errorDetail": {"message": str(e)}, "error": str(e)})

    # the body is read before the answer starts (the server drains what a handler leaves unread)
    return Stream(collected(progress, work_or_error))


@ROUTES.route("POST", "/images/load")
def load(request: Request) -> Response:
    quiet = request.flag("quiet")
    body = WholeBody(request.body)
    root = request.service.root
    progress = JsonProgress("Loading layer")

    def work() -> None:
        from pallet.engine.service import record_event
        from pallet.image.archive import load as load_archive
        from pallet.image.store import ImageStore

        def report(what: str, digest: Any, size: int) -> None:
            if not quiet:
                progress.put(
                    {
                        "status": "Loading layer",
                        "progressDetail": {"current": size, "total": size},
                        "id": digest.short,
                    }
                )

        with ImageStore.open(root) as store:
            loaded = load_archive(store, body, progress=report)
        for item in loaded:
            for taken, old in item.replaced:
                progress.put(
                    {
                        "stream": f"The image {taken.familiar_string()} already exists, renaming the old one "
                        f"with ID {old} to empty string\n"
                    }
                )
            names = [n.familiar_string() for n in item.names]
            for name in names:
                progress.put({"stream": f"Loaded image: {name}\n"})
                record_event(root, "image", "load", name, {"name": name})
            if not names:
                progress.put({"stream": f"Loaded image ID: {item.image.id}\n"})
                record_event(root, "image", "load", str(item.image.id), {"name": str(item.image.id)})

    def work_or_error() -> None:
        # dockerd answers 200 and says what is wrong with the archive in the stream (the docker CLI
        # prints it, docker-py raises ImageLoadError on it); nothing of a refused archive is kept
        try:
            work()
        except PalletError as e:
            progress.put({"errorDetail": {"message": str(e)}, "error": str(e)})

    # the body is read before the answer starts (the server drains what a handler leaves unread)
    return Stream(collected(progress, work_or_error))


def _save(request: Request, names: list[str]) -> Response:
    """A docker-archive of ``names``, written by a thread into a pipe as the client reads it."""
    import threading

    if not names:
        raise InvalidArgument("no image to save; name at least one image (names)")
    root = request.service.root
    with _store(request) as store:
        ids = [str(_resolve(store, n).id) for n in names]  # 404 before the answer's head
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def write() -> None:
        from pallet.image.archive import save
        from pallet.image.store import ImageStore

        try:
            with os.fdopen(write_fd, "wb") as out, ImageStore.open(root) as store:
                save(store, names, out)
        except BrokenPipeError:
            return  # the client went away
        except (PalletError, OSError) as e:  # reported by ending the stream short: the tar is incomplete
            failure.append(e)
            return
        from pallet.engine.service import record_event

        for image_id in ids:
            record_event(root, "image", "save", image_id, {"name": image_id})

    thread = threading.Thread(target=write, name="api image save", daemon=True)
    thread.start()

    def chunks() -> Iterator[bytes]:
        with os.fdopen(read_fd, "rb") as source:
            try:
                while data := source.read(1 << 16):
                    yield data
            finally:
                source.close()  # a writer still writing gets EPIPE and stops
                thread.join()
        if failure:
            raise failure[0]

    return Stream(chunks(), content_type="application/x-tar")


@ROUTES.route("POST", "/images/{name*}/push")
def push(request: Request) -> Response:
    from pallet.oci.reference import parse

    name = request.params["name"]
    tag_text = request.arg("tag")
    target = parse(name, default_tag=False)
    if tag_text:
        target = target.with_tag(tag_text)
    source = target.familiar_string() if target.tag or target.digest else None
    root = request.service.root
    with _store(request) as store:
        if source is None:  # docker pushes every tag of the repository when none is given
            sources = [r for r in store.list_images() for ref in r.references if ref.name == target.name]
            refs = sorted(
                {ref for r in sources for ref in r.references if ref.name == target.name and ref.tag}, key=str
            )
        else:
            _resolve(store, source)
            refs = [target]
    if not refs:
        raise NotFound(f"An image does not exist locally with the tag: {target.familiar_name()}")
    creds = _credentials(request, target.domain)
    progress = JsonProgress("Pushing")

    def work() -> None:
        from pathlib import Path

        from pallet.engine.service import record_event
        from pallet.image.store import ImageStore
        from pallet.registry.client import hosts
        from pallet.registry.client.push import push as push_image
        from pallet.registry.client.sources import BlobSources
        from pallet.registry.client.transport import Transport

        transport = Transport(insecure=hosts.insecure_list(Path(root), ()))
        try:
            with ImageStore.open(root) as store:
                blob_sources = BlobSources(Path(root))
                try:
                    for ref in refs:
                        result = push_image(
                            store,
                            ref.familiar_string(),
                            ref,
                            transport=transport,
                            credentials=creds,
                            progress=progress,
                            sources=blob_sources,
                        )
                        label = ref.tag or str(ref.digest)
                        # after push's own "<tag>: digest: … size: …" line, as dockerd
                        progress.put(
                            {
                                "progressDetail": {},
                                "aux": {"Tag": label, "Digest": str(result.digest), "Size": result.size},
                            }
                        )
                        record_event(
                            root, "image", "push", ref.familiar_string(), {"name": ref.familiar_string()}
                        )
                finally:
                    blob_sources.close()
        finally:
            transport.close()

    return Stream(messages(progress, work))


# --- commit ---------------------------------------------------------------------------------------


@ROUTES.route("POST", "/commit")
def commit(request: Request) -> Response:
    container = request.arg("container")
    if not container:
        raise InvalidArgument("a container is required (container)")
    repo = request.arg("repo")
    repository = None
    if repo:
        from pallet.oci.reference import parse

        ref = parse(repo, default_tag=False)
        repository = ref.with_tag(request.arg("tag") or ref.tag or "latest").familiar_string()
    elif request.arg("tag"):
        raise InvalidArgument("a tag needs a repository (repo)")
    changes = [line for c in request.args("changes") for line in c.splitlines() if line.strip()]
    request.json(
        required=False
    )  # the container config docker lets a client send: its changes come as `changes`
    record = request.service.commit(
        container,
        repository,
        changes=changes,
        message=request.arg("comment"),
        author=request.arg("author"),
        pause=request.flag("pause", True),
    )
    if repository is not None:
        _event(request, "tag", str(record.id), repository)
    return Json({"Id": str(record.id)}, status=201)
