"""``pallet audit``: the findings of existing containers and of images.

A container is judged by the options it was made with (``container.json``'s
``PalletOptions``) and by what its ``config.json`` shares with the host
(``spec/findings.py`` holds the one table, the same one ``run`` warns
from). A default container has no finding.

An image is judged by its config and its layers: it runs as root, it ships
setuid/setgid files (the last layer's word on each path wins: whiteouts
remove them), and secrets left in its environment or build history (names
such as ``*_PASSWORD``/``*_TOKEN``/``*_SECRET``/``*_API_KEY``, AWS access
keys, private keys, well-known token shapes). Secret values are never
printed whole.
"""

from __future__ import annotations

import os
import posixpath
import re

from pallet.engine.spec.findings import Finding, Severity, findings_for, spec_findings
from pallet.oci.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.containers.records import ContainerRecord
    from pallet.image.store import ImageStore
    from pallet.image.tarstream import TarEntry
    from pallet.oci.image_spec import ImageConfig

__all__ = ["Audit", "audit_container", "audit_image", "image_findings"]

#: the namespaces a plain ``run`` gets on every host (cgroup joins on cgroup v2, user with userns-remap)
_PRIVATE_ALWAYS = ("mount", "network", "uts", "pid", "ipc")

#: environment or build-argument names that hold secrets
_SECRET_NAME = re.compile(
    r"(?:PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_?KEY(?:_ID)?|PRIVATE_?KEY|CREDENTIALS?)$",
    re.IGNORECASE,
)
#: values that are secrets whatever their name
_SECRET_VALUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
)
#: NAME=value in a history line (ENV, ARG, a build argument, a shell assignment), and the old
#: ``ENV NAME value`` form
_ASSIGNMENTS = (
    re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|[^\s\"';&|]+)"),
    re.compile(r"\bENV\s+([A-Za-z_][A-Za-z0-9_]*)\s+([^\s=]\S*)"),
)


class Audit(Record):
    """The findings of one container or image."""

    #: ``container`` or ``image``
    kind: str
    id: str
    #: the container's name or the image reference asked for
    name: str
    findings: tuple[Finding, ...]

    @property
    def high(self) -> bool:
        return any(f.severity == Severity.HIGH for f in self.findings)

    def to_json(self) -> dict[str, object]:
        return {
            "Type": self.kind,
            "Id": self.id,
            "Name": self.name,
            "Findings": [f.to_json() for f in self.findings],
        }


def audit_container(engine: Engine, record: ContainerRecord) -> Audit:
    """The findings of container ``record`` (its options, then its spec's host namespaces)."""
    from pallet.engine.spec.options import options_from_json
    from pallet.oci.runtime_spec import load_spec

    document = engine.document(record)
    options = options_from_json(document.get("PalletOptions", {}))
    private = _private_namespaces(engine)
    found = findings_for(
        options,
        engine_paths=(engine.layout.root, engine.layout.run_root),
        private_cgroupns="cgroup" in private,
    )
    try:
        with open(os.path.join(engine.layout.bundle(record.id), "config.json"), "rb") as f:
            spec = load_spec(f.read())
    except FileNotFoundError:
        spec = None  # not created by the runtime yet: the options are all there is
    if spec is not None:
        named = {f.setting for f in found}  # --userns host is in the options too
        found += [f for f in spec_findings(spec, private_by_default=private) if f.setting not in named]
    found.sort(key=lambda f: f.rank)
    return Audit(kind="container", id=record.id, name=record.name, findings=tuple(found))


def _private_namespaces(engine: Engine) -> tuple[str, ...]:
    from pallet.engine.config import load_config
    from pallet.engine.spec.generate import host_facts

    out = list(_PRIVATE_ALWAYS)
    if host_facts().cgroup_v2:
        out.append("cgroup")
    if load_config(engine.layout.root).userns_remap:
        out.append("user")
    return tuple(out)


def audit_image(images: ImageStore, ref: str) -> Audit:
    """The findings of image ``ref``: its config, and the files its layers leave (read from the blobs)."""
    from pallet.image.archive import decompressed
    from pallet.image.tarstream import TarReader

    record = images.resolve(ref)
    config = images.config(record.id)

    def entries() -> Iterator[tuple[int, TarEntry]]:
        for index, layer in enumerate(images.layers(record.id)):
            with images.content.open(layer.blob.digest) as f:
                for entry in TarReader(decompressed(f)):
                    yield index, entry

    return Audit(kind="image", id=str(record.id), name=ref, findings=tuple(image_findings(config, entries())))


def image_findings(config: ImageConfig, entries: Iterable[tuple[int, TarEntry]]) -> list[Finding]:
    """The findings of an image's config and of its layers' tar entries (``(layer index, entry)``, bottom
    layer first, in order), most severe first."""
    out = _secret_findings(config)
    container = config.config
    user = (container.user if container is not None else None) or ""
    if user.partition(":")[0] in ("", "0", "root"):
        out.append(
            Finding(
                severity=Severity.MEDIUM,
                setting="USER root" if user else "no USER (root)",
                escape="the container's process is root: any escape from it lands as root on the host, and it "
                "keeps every default capability",
                fix="add USER with a non-root uid to the image, or run it with -u",
            )
        )
    for path, (mode, uid, gid) in sorted(_final_files(entries).items()):
        bits = [b for b, m in (("setuid", 0o4000), ("setgid", 0o2000)) if mode & m]
        owner = f"uid {uid}" if mode & 0o4000 else f"gid {gid}"
        out.append(
            Finding(
                severity=Severity.LOW,
                setting=f"/{path} ({' and '.join(bits)}, {owner})",
                escape="a non-root user in the container can run it with raised privileges, its bugs are a way "
                "to root in the container",
                fix="remove the bit (chmod u-s,g-s) or run with --security-opt no-new-privileges=true",
            )
        )
    return sorted(out, key=lambda f: f.rank)


def _final_files(entries: Iterable[tuple[int, TarEntry]]) -> dict[str, tuple[int, int, int]]:
    """Regular files with the setuid or setgid bit that the image's last layers leave in place."""
    from pallet.image.tarstream import REG

    found: dict[str, tuple[int, int, int]] = {}
    for _, entry in entries:
        path = posixpath.normpath(entry.name.lstrip("/").removeprefix("./")).lstrip("/")
        parent, base = posixpath.split(path)
        if base == ".wh..wh..opq":
            prefix = parent + "/"
            for known in [k for k in found if k.startswith(prefix)]:
                del found[known]
            continue
        if base.startswith(".wh."):
            gone = posixpath.join(parent, base.removeprefix(".wh."))
            for known in [k for k in found if k == gone or k.startswith(gone + "/")]:
                del found[known]
            continue
        found.pop(path, None)  # a later layer's entry replaces the file
        if entry.type == REG and entry.mode & 0o6000:
            found[path] = (entry.mode, entry.uid, entry.gid)
    return found


def _masked(value: str) -> str:
    return value[:4] + "…" if len(value) > 8 else "…"


def _secret_in(name: str, value: str) -> str | None:
    """What ``name=value`` holds, if it is a secret: a sentence naming it, its value masked."""
    for what, pattern in _SECRET_VALUES:
        if pattern.search(value):
            return f"{name} holds {what}"
    if value and _SECRET_NAME.search(name):
        return f"{name}={_masked(value)} looks like a secret by its name"
    return None


def _secret_findings(config: ImageConfig) -> list[Finding]:
    out: list[Finding] = []
    env = (config.config.env if config.config is not None else None) or ()
    for entry in env:
        name, _, value = entry.partition("=")
        what = _secret_in(name, value)
        if what is not None:
            out.append(
                Finding(
                    severity=Severity.HIGH,
                    setting=f"ENV {name}",
                    escape=f"{what}: every container and anyone who can pull the image can read it",
                    fix="pass secrets at run time (-e, --env-file, a mounted file), never in the image",
                )
            )
    for index, step in enumerate(config.history):
        line = step.created_by or ""
        hits = {w for w, pattern in _SECRET_VALUES if pattern.search(line)}
        for pattern in _ASSIGNMENTS:
            for match in pattern.finditer(line):
                name, value = match.group(1), match.group(2).strip("\"'")
                if value and _SECRET_NAME.search(name):
                    hits.add(f"{name}={_masked(value)}")
        if hits:
            out.append(
                Finding(
                    severity=Severity.HIGH,
                    setting=f"history step {index + 1}",
                    escape=f"the build step keeps {', '.join(sorted(hits))} in the image's history, which "
                    "anyone who can pull the image reads",
                    fix="use build secrets (RUN --mount=type=secret) instead of ARG, ENV or inline values",
                )
            )
    return out
