"""System routes: ``/_ping``, ``/version``, ``/info``, ``/auth``."""

from __future__ import annotations

import hashlib
import os
import platform

from pallet.api import versions
from pallet.api.messages import Json, Raw, Request, Response
from pallet.api.routing import RouteTable
from pallet.errors import InvalidArgument

__all__ = ["ROUTES"]

ROUTES = RouteTable()

_NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


@ROUTES.route("GET", "/_ping")
def ping(request: Request) -> Response:
    return Raw(b"OK", headers=_NO_CACHE)


@ROUTES.route("HEAD", "/_ping")
def ping_head(request: Request) -> Response:
    return Raw(b"", headers=_NO_CACHE)


def _pallet_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pallet")
    except PackageNotFoundError:
        return "0.0.0"


_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def _arch() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine)


@ROUTES.route("GET", "/version")
def version(request: Request) -> Response:
    engine = _pallet_version()
    kernel = os.uname().release
    api, minimum = versions.text(versions.MAX_VERSION), versions.text(versions.MIN_VERSION)
    return Json(
        {
            "Platform": {"Name": f"pallet {engine}"},
            "Components": [
                {
                    "Name": "Engine",
                    "Version": engine,
                    "Details": {
                        "ApiVersion": api,
                        "Arch": _arch(),
                        "Experimental": "false",
                        "KernelVersion": kernel,
                        "MinAPIVersion": minimum,
                        "Os": "linux",
                    },
                }
            ],
            "Version": engine,
            "ApiVersion": api,
            "MinAPIVersion": minimum,
            "GitCommit": "",
            "GoVersion": f"python{platform.python_version()}",
            "Os": "linux",
            "Arch": _arch(),
            "KernelVersion": kernel,
        }
    )


@ROUTES.route("GET", "/info")
def info(request: Request) -> Response:
    from datetime import UTC, datetime

    facts = request.service.info()
    doc = facts.to_json()
    root = str(doc.get("DockerRootDir", ""))
    # stable per root, in docker's ID shape
    digest = hashlib.sha256(root.encode()).hexdigest().upper()
    doc.update(
        {
            "ID": ":".join(digest[i : i + 4] for i in range(0, 48, 4)),
            "Name": platform.node(),
            "ServerVersion": _pallet_version(),
            "OSType": "linux",
            "Architecture": _arch(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "MemTotal": _mem_total(),
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Log": ["json-file"]},
            "Labels": [],
            "Debug": False,
            "Experimental": False,
            "ExperimentalBuild": False,
            "SystemTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"]},
            "Warnings": [],
        }
    )
    return Json(doc)


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


@ROUTES.route("POST", "/auth")
def auth(request: Request) -> Response:
    """Check credentials against the registry (docker's ``login``); the client stores them itself."""
    from pallet.registry.client import credentials, hosts
    from pallet.registry.client.repository import Registry
    from pallet.registry.client.transport import Transport

    doc = request.json_object()
    username, password = doc.get("username"), doc.get("password")
    server = doc.get("serveraddress") or "https://index.docker.io/v1/"
    if not isinstance(username, str) or not isinstance(password, str) or not isinstance(server, str):
        raise InvalidArgument("auth needs a username, a password and a serveraddress (strings)")
    from pathlib import Path

    transport = Transport(insecure=hosts.insecure_list(Path(request.service.info().root), ()))
    try:
        Registry(
            transport,
            hosts.normalize(server),
            credentials.Credentials(username=username, password=password),
        ).login_check()
    finally:
        transport.close()
    return Json({"IdentityToken": "", "Status": "Login Succeeded"})
