"""The URL space of the distribution API: which endpoint a path names, and its parts.

Repository names contain slashes (``library/busybox``), so a path is matched
from its end: ``/v2/<name>/manifests/<reference>`` and so on, with ``<name>``
checked against the spec's grammar. Parsing is pure; ``handlers`` acts on the
``Route`` it returns.
"""

from __future__ import annotations

import re

from pallet.registry.server.errorcodes import RegistryError

__all__ = ["Route", "match", "validate_name", "validate_tag"]

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_NAME_RE = re.compile(_NAME)
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_MAX_NAME = 255

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("base", re.compile(r"/v2/?")),
    ("catalog", re.compile(r"/v2/_catalog")),
    ("tags", re.compile(r"/v2/(?P<name>.+)/tags/list")),
    ("manifest", re.compile(r"/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)")),
    ("upload_start", re.compile(r"/v2/(?P<name>.+)/blobs/uploads/?")),
    ("upload", re.compile(r"/v2/(?P<name>.+)/blobs/uploads/(?P<ref>[A-Za-z0-9-]+)")),
    ("blob", re.compile(r"/v2/(?P<name>.+)/blobs/(?P<ref>[^/]+)")),
    ("referrers", re.compile(r"/v2/(?P<name>.+)/referrers/(?P<ref>[^/]+)")),
)


class Route:
    """An endpoint (``kind``), the repository it addresses and the last path part.

    ``ref`` is a tag or digest for manifests, a digest for blobs and referrers,
    an upload session id for uploads, and empty otherwise.
    """

    __slots__ = ("kind", "name", "ref")

    def __init__(self, kind: str, name: str = "", ref: str = "") -> None:
        self.kind = kind
        self.name = name
        self.ref = ref

    def __repr__(self) -> str:
        return f"Route({self.kind!r}, {self.name!r}, {self.ref!r})"


def validate_name(name: str) -> str:
    """``name`` if it is a valid repository name; ``NAME_INVALID`` otherwise."""
    if len(name) > _MAX_NAME or not _NAME_RE.fullmatch(name):
        raise RegistryError(
            "NAME_INVALID",
            detail={"name": name, "reason": "components are [a-z0-9] separated by . _ __ or -, joined by /"},
        )
    return name


def validate_tag(tag: str) -> str:
    """``tag`` if it is a valid tag; ``MANIFEST_INVALID`` (the spec's code for a bad reference) otherwise."""
    if not _TAG_RE.fullmatch(tag):
        raise RegistryError("MANIFEST_INVALID", f"invalid tag {tag!r}", detail={"tag": tag})
    return tag


def match(path: str) -> Route | None:
    """The route for a URL path (without query), or None when it is no endpoint of the API.

    The repository name is validated: a malformed one raises ``NAME_INVALID``.
    """
    for kind, pattern in _PATTERNS:
        found = pattern.fullmatch(path)
        if found is None:
            continue
        groups = found.groupdict()
        name = groups.get("name") or ""
        if name:
            validate_name(name)
        return Route(kind, name, groups.get("ref") or "")
    return None
