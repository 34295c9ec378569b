"""``POST /build`` (docker's legacy builder protocol) and ``POST /build/prune``.

The body is the build context as a tar (plain, gzip, bzip2, xz or zstd),
built by ``pallet.build`` as ``pallet build -`` builds a context from stdin.
The answer is docker's JSON stream: ``{"stream": "Step 1/3 : FROM busybox\\n"}``
for each instruction, a RUN step's output lines, `` ---> Using cache`` for a
cached step, then ``{"aux": {"ID": "sha256:…"}}``, ``Successfully built``
and ``Successfully tagged`` lines. The builder reports in BuildKit's plain
progress; ``_LegacyLines`` turns those lines into the legacy messages.

As dockerd, a build that fails before its first step answers the error's
status (a missing Dockerfile, a bad parameter); one that fails later answers
200 with ``{"errorDetail": {"message": …}, "error": …}`` as the last message.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pallet.api.messages import Json, Request, Response, Stream, WholeBody
from pallet.api.progress import JsonProgress, messages
from pallet.api.routing import RouteTable
from pallet.errors import InvalidArgument, PalletError

if TYPE_CHECKING:
    from pallet.build.request import BuildRequest
    from pallet.registry.client.credentials import Credentials

__all__ = ["ROUTES"]

ROUTES = RouteTable()

#: ``#N [stage i/n] INSTRUCTION`` (a stage's prefix is optional), ``#N 0.123 output``, ``#N CACHED``
_STEP = re.compile(r"#\d+ \[(?:[^\]]* )?(\d+/\d+)\] (.*)")
_OUTPUT = re.compile(r"#\d+ \d+\.\d+ (.*)")
_CACHED = re.compile(r"#\d+ CACHED")
#: the builder's failed RUN (BuildKit's words), which the legacy builder says as ``The command '…'
#: returned a non-zero code: N`` with the code in errorDetail (docker-py's BuildError shows it)
_RUN_FAILED = re.compile(r'[^\n]*: process "(.*)" did not complete successfully: exit code: (\d+)', re.S)


class _LegacyLines:
    """A text stream for the builder's plain progress; queues the legacy builder's messages."""

    def __init__(self, progress: JsonProgress, *, quiet: bool) -> None:
        self._progress = progress
        self._quiet = quiet
        self._partial = ""

    def isatty(self) -> bool:
        return False

    def stderr(self, text: str) -> None:
        """A RUN's stderr, as the legacy builder sends it: as written, in red (docker-py shows it)."""
        if not self._quiet:
            self._progress.put({"stream": f"\x1b[91m{text}\x1b[0m"})

    def flush(self) -> None:
        pass

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        if self._quiet:
            return
        if step := _STEP.fullmatch(line):
            self._progress.put({"stream": f"Step {step[1]} : {step[2]}\n"})
        elif output := _OUTPUT.fullmatch(line):
            self._progress.put({"stream": output[1] + "\n"})
        elif _CACHED.fullmatch(line):
            self._progress.put({"stream": " ---> Using cache\n"})
        # the rest (internal steps, DONE, ERROR, exporting) has no legacy counterpart: an error
        # reaches the client as the stream's errorDetail


def _bool(request: Request, name: str) -> bool:
    """docker's ``BoolValue``, which the build route reads its flags with: anything but empty, ``0``,
    ``no``, ``false`` or ``none`` (any case) is true (docker-py sends ``pull=False``)."""
    return request.arg(name).strip().lower() not in ("", "0", "no", "false", "none")


def _json_arg(request: Request, name: str, kind: type) -> Any:
    raw = request.arg(name)
    if not raw:
        return kind()
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"invalid {name} parameter: {raw!r} is not JSON") from None
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise InvalidArgument(f"invalid {name} parameter: {raw!r} is not a JSON {kind.__name__}")
    return value


def _string_map(request: Request, name: str) -> dict[str, str]:
    """``buildargs`` / ``labels``: a JSON object of strings (a null build arg is left unset, as docker)."""
    out: dict[str, str] = {}
    for key, value in _json_arg(request, name, dict).items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidArgument(f"invalid {name} parameter: the value of {key!r} is not a string")
        out[key] = value
    return out


#: what docker's platform parser knows (containerd's platforms): an OS, or an architecture on linux
_OSES = frozenset(
    ("aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js", "linux", "netbsd", "openbsd",
     "plan9", "solaris", "wasip1", "windows")
)  # fmt: skip
_ARCHES = frozenset(
    ("386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64", "ppc64le",
     "riscv64", "s390x", "wasm", "x86_64", "aarch64", "armhf", "armel", "i386")
)  # fmt: skip


def _platform(text: str) -> str | None:
    """The ``platform`` parameter: docker's words for one its parser cannot read (``foobar``); one it
    reads but pallet does not build for is the builder's ``Unsupported``."""
    if not text:
        return None
    parts = text.strip().lower().split("/")
    known = parts[0] in _OSES if len(parts) > 1 else parts[0] in _OSES | _ARCHES
    if not known or len(parts) > 3 or (len(parts) > 1 and parts[1] not in _ARCHES):
        raise InvalidArgument(f'"{text}": unknown operating system or architecture: invalid argument')
    return text


def build_request(request: Request) -> BuildRequest:
    """The query's parameters (those docker's CLI and docker-py send) as the builder's request."""
    from pallet.build.request import BuildRequest

    remote = request.arg("remote")
    if remote:
        # dockerd fetches a git or tarball URL itself; pallet builds what the client sends
        raise InvalidArgument(
            f"unable to prepare context: remote context {remote!r} is not supported: "
            "send the context as the request body"
        )
    cache_from = _json_arg(request, "cachefrom", list)
    if not all(isinstance(c, str) for c in cache_from):
        raise InvalidArgument("invalid cachefrom parameter: a JSON list of image names is required")
    network = request.arg("networkmode") or "default"
    if _bool(request, "squash"):
        # dockerd without experimental features (pallet has none: /info ExperimentalBuild false)
        raise InvalidArgument("squash is only supported with experimental mode")
    return BuildRequest(
        context="-",
        # the first value, as Go's FormValue: docker-py sends an outside Dockerfile's name, then its text
        dockerfile=next(iter(request.args("dockerfile")), "") or None,
        tags=tuple(t for t in request.args("t") if t),
        target=request.arg("target") or None,
        build_args=_string_map(request, "buildargs"),
        labels=_string_map(request, "labels"),
        platform=_platform(request.arg("platform")),
        quiet=_bool(request, "q"),
        progress="plain",
        network="default" if network == "bridge" else network,
        pull=_bool(request, "pull"),
        no_cache=_bool(request, "nocache"),
        cache_from=tuple(cache_from),
        # docker's NAME:IP (or NAME=IP), one a parameter
        extra_hosts=tuple(h for h in request.args("extrahosts") if h),
        legacy=True,
    )


def _registry_config(request: Request) -> dict[str, Credentials]:
    """``X-Registry-Config``: base64url JSON of docker's AuthConfig per registry, which the builder
    pulls base images with (a registry not in it: the service's own credentials). An undecodable
    header, or an entry without credentials, is ignored, as dockerd ignores it ("for a pull it is
    not an error if no auth was given")."""
    import base64
    import binascii

    from pallet.registry.client import hosts
    from pallet.registry.client.credentials import Credentials

    raw = request.headers.get("x-registry-config", "")
    if not raw:
        return {}
    try:
        doc = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        return {}
    out: dict[str, Credentials] = {}
    for registry, entry in doc.items() if isinstance(doc, dict) else ():
        if not isinstance(entry, dict):
            continue
        username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
        if not username and entry.get("auth"):  # docker's "auth": base64 of user:password
            try:
                username, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
            except (binascii.Error, ValueError):
                continue
        found = Credentials(
            username=username, password=password, identity_token=str(entry.get("identitytoken") or "")
        )
        if found.username or found.password or found.identity_token:
            try:
                out[hosts.normalize(str(registry))] = found
            except PalletError:
                continue
    return out


@ROUTES.route("POST", "/build")
def build(request: Request) -> Response:
    build_options = replace(build_request(request), registry_auth=_registry_config(request))
    service = request.service
    root, run_root = service.root, service.run_root
    body = WholeBody(request.body)
    progress = JsonProgress("Building")
    lines = _LegacyLines(progress, quiet=build_options.quiet)

    def work() -> None:
        from pallet.build.builder import build as run_build
        from pallet.oci.reference import parse

        try:
            result = run_build(
                build_options,
                root=root,
                run_root=run_root,
                out=lines,  # type: ignore[arg-type]
                stdin=body,  # type: ignore[arg-type]
                stderr=lines.stderr,
            )
        except PalletError as e:
            failed = _RUN_FAILED.match(e.message)
            if failed is None:
                raise
            # a RUN step fails after the stream began: docker's legacy message, with the code
            message = f"The command '{failed[1]}' returned a non-zero code: {failed[2]}"
            progress.put({"errorDetail": {"code": int(failed[2]), "message": message}, "error": message})
            return
        progress.put({"aux": {"ID": result.image_id}})
        if build_options.quiet:
            progress.put({"stream": result.image_id + "\n"})
            return
        progress.put({"stream": f"Successfully built {result.image_id.removeprefix('sha256:')[:12]}\n"})
        for tag in build_options.tags:
            progress.put({"stream": f"Successfully tagged {parse(tag).familiar_string()}\n"})

    return Stream(messages(progress, work))


@ROUTES.route("POST", "/build/prune")
def prune(request: Request) -> Response:
    """``pallet builder prune``'s work: ``all``, ``filters`` ``until``; docker's ``BuildCachePruneReport``."""
    from pallet.build.prune import prune_cache
    from pallet.engine.service import prune_filters

    texts = [f"{key}={value}" for key, values in request.filters().items() for value in values]
    filters = prune_filters(texts)
    service = request.service
    report = prune_cache(service.root, service.run_root, all=request.flag("all"), older_than=filters.until)
    return Json({"CachesDeleted": list(report.images) or None, "SpaceReclaimed": report.bytes})
