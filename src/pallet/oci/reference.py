"""Image references parsed and normalised the way docker does (distribution/reference).

``busybox`` means ``docker.io/library/busybox:latest``; ``user/app`` means
``docker.io/user/app``; a first component with a ``.`` or ``:`` or equal to
``localhost`` (or containing an uppercase letter) is a registry host:
``localhost:5000/app@sha256:…``. Repository names are lowercase, at most 255
characters including the registry. ``familiar_name()`` gives the short form
people type and docker shows (``busybox``, ``user/app``).
"""

from __future__ import annotations

from pallet.errors import InvalidArgument
from pallet.oci.digest import Digest
from pallet.oci.record import Record

__all__ = ["DEFAULT_DOMAIN", "DEFAULT_TAG", "NAME_MAX", "Reference", "parse"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
#: longest repository name (registry included), as docker enforces it
NAME_MAX = 255

# docker's grammar, used as written (``_parse_full``) for whatever ``_parse_fast`` is not sure of
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?"

# the character classes of the grammar above, for checking by hand
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_PATH_CHARS = _LOWER_ALNUM | frozenset("._-")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_TAG_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_TAG_CHARS = _TAG_FIRST | frozenset(".-")
_DIGITS = frozenset("0123456789")
_LOWER_HEX = frozenset("0123456789abcdef")


class Reference(Record):
    """A normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """The repository's full name, ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def familiar_name(self) -> str:
        """The short name docker shows: ``busybox``, ``user/app``, ``localhost:5000/app``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX) :]:
            return self.path[len(OFFICIAL_PREFIX) :]
        first, sep, _ = self.path.partition("/")
        if sep and "." in first:
            # docker would print "a.b/c", which reads back as registry "a.b": keep the name unambiguous
            return self.name
        return self.path

    def familiar_string(self) -> str:
        """``familiar_name()`` with the tag and digest: ``busybox:latest``."""
        text = self.familiar_name()
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def canonical(self) -> Self:
        """The form docker stores: ``name@digest`` when there is a digest (the tag is dropped), else ``name:tag``."""
        if self.digest is not None:
            return self.replace(tag=None)
        if self.tag is None:
            return self.replace(tag=DEFAULT_TAG)
        return self

    def with_tag(self, tag: str) -> Self:
        """The same repository with ``tag`` and no digest."""
        if not _is_tag(tag):
            raise InvalidArgument(f'invalid tag "{tag}": use letters, digits, "_", "." and "-" (at most 128)')
        return self.replace(tag=tag, digest=None)


def _invalid(problem: str | None = None) -> InvalidArgument:
    return InvalidArgument(f"invalid reference format: {problem}" if problem else "invalid reference format")


def _split_domain(text: str) -> tuple[str, str]:
    first, sep, rest = text.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, text
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse a reference as ``docker`` does, normalising the registry and ``library/``.

    With ``default_tag`` a reference with neither tag nor digest gets ``:latest``.
    Raises ``InvalidArgument`` with docker's wording (``invalid reference format:
    repository name must be lowercase``).
    """
    found = _parse_fast(text, default_tag)
    return found if found is not None else _parse_full(text, default_tag)


def _parse_full(text: str, default_tag: bool) -> Reference:
    """docker's grammar as regular expressions: every reference, every error."""
    if not text:
        raise _invalid("repository name must have at least one component")
    if len(text) == 64 and set(text) <= _LOWER_HEX:
        raise InvalidArgument(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings; "
            "use sha256:<id> to name an image by id"
        )
    domain, remainder = _split_domain(text)
    repo_part = remainder.partition(":")[0]
    if repo_part.lower() != repo_part:
        raise _invalid("repository name must be lowercase")
    # imported here: re costs ~10 ms, and the common references never get this far (re caches the pattern)
    import re

    full = f"{domain}/{remainder}"
    match = re.fullmatch(_REFERENCE, full)
    if match is None:
        if re.fullmatch(_REFERENCE, full.lower()):
            raise _invalid("repository name must be lowercase")
        raise _invalid()
    name, tag, digest_text = match.groups()
    if len(name) > NAME_MAX:
        raise _invalid(f"repository name must not be more than {NAME_MAX} characters")
    digest = None
    if digest_text is not None:
        try:
            digest = Digest.parse(digest_text)
        except InvalidArgument as e:
            raise _invalid(str(e)) from None
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=name[len(domain) + 1 :], tag=tag, digest=digest)


def _parse_fast(text: str, default_tag: bool) -> Reference | None:
    """The common forms (``name``, ``name:tag``, ``host[:port]/path/name:tag``, ``…@sha256:<hex>``) by hand.

    Contract: returns what ``_parse_full`` returns, or None whenever it is not
    sure (anything unusual, anything invalid): never an error of its own.
    """
    rest, at, digest_text = text.partition("@")
    digest = None
    if at:
        hex_part = digest_text.removeprefix("sha256:")
        if len(hex_part) != 64 or len(digest_text) != 71 or not set(hex_part) <= _LOWER_HEX:
            return None
        digest = Digest(digest_text)
    if len(text) == 64 and set(text) <= _LOWER_HEX:
        return None  # an image id, refused by _parse_full
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = None
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _is_tag(tag):
            return None
    domain, path = _split_domain(rest)
    if domain != DEFAULT_DOMAIN and not _is_domain(domain):
        return None
    if len(domain) + 1 + len(path) > NAME_MAX:
        return None
    for component in path.split("/"):
        if not _is_path_component(component):
            return None
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def _is_tag(text: str) -> bool:
    """``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``"""
    return 0 < len(text) <= 128 and text[0] in _TAG_FIRST and set(text) <= _TAG_CHARS


def _is_path_component(text: str) -> bool:
    """``[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*``"""
    if (
        not text
        or text[0] not in _LOWER_ALNUM
        or text[-1] not in _LOWER_ALNUM
        or not set(text) <= _PATH_CHARS
    ):
        return False
    separator = ""
    for c in text:
        if c in _LOWER_ALNUM:
            if separator and separator not in (".", "_", "__") and separator != "-" * len(separator):
                return False
            separator = ""
        else:
            separator += c
    return True


def _is_domain(text: str) -> bool:
    """``host(:port)?`` with DNS-style host components; bracketed IPv6 hosts are left to the full grammar."""
    host, colon, port = text.partition(":")
    if colon and (not port or not set(port) <= _DIGITS):
        return False
    for component in host.split("."):
        if not component or component[0] == "-" or component[-1] == "-" or not set(component) <= _HOST_CHARS:
            return False
    return True
