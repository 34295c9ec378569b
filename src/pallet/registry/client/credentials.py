"""Registry credentials in docker's ``config.json`` format, so an existing ``docker login`` works.

The file is ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``.
``auths.<key>.auth`` holds base64 ``user:password`` (``identitytoken`` is read
as an OAuth2 refresh token, as docker writes it for some registries). The key is
``host[:port]``, except Docker Hub's ``https://index.docker.io/v1/``
(see ``hosts.config_key``); lookups also accept the ``https://host`` spellings
other tools write.

Credential helpers: ``credHelpers.<host>`` and ``credsStore`` are *read*
(``docker-credential-<name> get``) so a docker set-up with a keyring works;
``pallet login`` always writes the file itself and says so when a helper is
configured. Writes are atomic (temp file + rename) and keep every other key of
the file untouched; the file is created with mode 0600.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from pallet.errors import InvalidArgument
from pallet.oci.record import Record
from pallet.registry.client import hosts

__all__ = ["Credentials", "config_path", "erase", "lookup", "store"]


class Credentials(Record):
    """What to authenticate with: a user and password, or a refresh (identity) token."""

    username: str = ""
    password: str = ""
    identity_token: str = ""


def config_path() -> Path:
    """Where docker's client config lives for this process."""
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _load(path: Path) -> dict[str, object]:
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"{path}: cannot read the credentials file: {e}; fix or remove it") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{path}: not a JSON object; fix or remove it")
    return doc


def _keys(registry: str) -> list[str]:
    key = hosts.config_key(registry)
    return [key, f"https://{key}", f"http://{key}", f"https://{key}/v1/", f"https://{key}/v2/"]


def _from_helper(helper: str, registry: str) -> Credentials | None:
    import subprocess

    try:
        done = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=hosts.config_key(registry).encode(),
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None  # "credentials not found in native keychain"
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        return None
    user, secret = str(doc.get("Username", "")), str(doc.get("Secret", ""))
    if user == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(username=user, password=secret) if secret else None


def lookup(registry: str, path: Path | None = None) -> Credentials | None:
    """The stored credentials for ``registry`` (``host[:port]`` or ``docker.io``), or None (anonymous)."""
    doc = _load(path or config_path())
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict):
        helper = helpers.get(hosts.config_key(registry)) or helpers.get(registry)
        if isinstance(helper, str) and helper:
            return _from_helper(helper, registry)
    auths = doc.get("auths")
    if isinstance(auths, dict):
        for key in _keys(registry):
            entry = auths.get(key)
            if not isinstance(entry, dict):
                continue
            token = entry.get("identitytoken")
            if isinstance(token, str) and token:
                return Credentials(identity_token=token)
            auth = entry.get("auth")
            if isinstance(auth, str) and auth:
                try:
                    user, sep, password = base64.b64decode(auth).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    raise InvalidArgument(
                        f'{path or config_path()}: the "auth" of {key} is not base64 "user:password"; run "pallet login {registry}" again'
                    ) from None
                if sep:
                    return Credentials(username=user, password=password)
    store_name = doc.get("credsStore")
    if isinstance(store_name, str) and store_name:
        return _from_helper(store_name, registry)
    return None


def _write(path: Path, doc: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent="\t")
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def store(registry: str, credentials: Credentials, path: Path | None = None) -> Path:
    """Save ``credentials`` for ``registry``; returns the file written. Other entries are kept."""
    path = path or config_path()
    doc = _load(path)
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        auths = {}
    for key in _keys(registry)[1:]:
        auths.pop(key, None)
    secret = f"{credentials.username}:{credentials.password}".encode()
    auths[hosts.config_key(registry)] = {"auth": base64.b64encode(secret).decode()}
    doc["auths"] = auths
    _write(path, doc)
    return path


def erase(registry: str, path: Path | None = None) -> bool:
    """Forget the credentials of ``registry``; True if there were any in the file. Idempotent."""
    path = path or config_path()
    doc = _load(path)
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return False
    removed = [key for key in _keys(registry) if auths.pop(key, None) is not None]
    if removed:
        _write(path, doc)
    return bool(removed)
