"""Registry credentials in docker's ``config.json`` format, so an existing ``docker login`` works.

The file is ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``.
``auths.<key>.auth`` holds base64 ``user:password`` (``identitytoken`` is read
as an OAuth2 refresh token, as docker writes it for some registries). The key is
``host[:port]``, except Docker Hub's ``https://index.docker.io/v1/``
(see ``hosts.config_key``); lookups also accept the ``https://host`` spellings
other tools write.

Credential helpers, as docker uses them: a registry's store is the helper
``credHelpers.<key>`` names, else the one ``credsStore`` names, else the file.
With a helper, ``login`` runs ``docker-credential-<name> store`` (JSON
``{"ServerURL", "Username", "Secret"}`` on stdin; ``Username`` ``<token>`` for
an identity token) and leaves only an empty ``auths.<key>`` entry in the file,
as docker does, so the password is never written there; pull and push run
``get`` (the key on stdin) and read nothing else; ``logout`` runs ``erase`` and
removes the file's entries too. A helper that cannot be run makes ``lookup``
anonymous (the registry's 401 then says to log in) and ``store``/``erase`` fail
with ``FailedPrecondition`` naming it.

Writes are atomic (temp file + rename) and keep every other key of the file
untouched; the file is created with mode 0600.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from pallet.errors import FailedPrecondition, InvalidArgument
from pallet.linux.atomicfile import write_atomic
from pallet.oci.record import Record
from pallet.registry.client import hosts

__all__ = ["Credentials", "config_path", "erase", "helper_for", "lookup", "store"]

#: docker's credential helpers' answer when they hold nothing for a server
_NOT_FOUND = "credentials not found in native keychain"

#: the ``Username`` a helper stores an identity (refresh) token under
_TOKEN_USER = "<token>"


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


def helper_for(doc: dict[str, object], registry: str) -> str | None:
    """The credential helper that keeps ``registry``'s credentials, None for the file itself (docker's rule)."""
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict):
        helper = helpers.get(hosts.config_key(registry)) or helpers.get(registry)
        if isinstance(helper, str) and helper:
            return helper
    default = doc.get("credsStore")
    return default if isinstance(default, str) and default else None


def _run_helper(helper: str, action: str, data: bytes) -> tuple[int, str]:
    """Run ``docker-credential-<helper> <action>`` with ``data`` on stdin: (exit status, its output).

    ``FailedPrecondition`` when it cannot be run at all.
    """
    import subprocess

    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run([program, action], input=data, capture_output=True, timeout=60, check=False)
    except OSError as e:
        raise FailedPrecondition(
            f'cannot run credential helper "{program}": {e.strerror or e}; install it in $PATH or remove '
            f'"credsStore"/"credHelpers" from {config_path()}'
        ) from None
    except subprocess.TimeoutExpired:
        raise FailedPrecondition(
            f'credential helper "{program} {action}" did not finish within 60 s; is it waiting for a keyring unlock?'
        ) from None
    output = (done.stdout or done.stderr).decode(errors="replace").strip()
    return done.returncode, output


def _from_helper(helper: str, registry: str) -> Credentials | None:
    try:
        status, output = _run_helper(helper, "get", hosts.config_key(registry).encode())
    except FailedPrecondition:
        return None  # pull anonymously; a 401 then says to log in
    if status != 0:
        return None  # "credentials not found in native keychain"
    try:
        doc = json.loads(output)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    user, secret = str(doc.get("Username", "")), str(doc.get("Secret", ""))
    if user == _TOKEN_USER:
        return Credentials(identity_token=secret)
    return Credentials(username=user, password=secret) if secret else None


def lookup(registry: str, path: Path | None = None) -> Credentials | None:
    """The stored credentials for ``registry`` (``host[:port]`` or ``docker.io``), or None (anonymous)."""
    doc = _load(path or config_path())
    helper = helper_for(doc, registry)
    if helper is not None:
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
    return None


def _write(path: Path, doc: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(str(path), (json.dumps(doc, indent="\t") + "\n").encode(), mode=0o600)  # it holds passwords


def store(registry: str, credentials: Credentials, path: Path | None = None) -> str | None:
    """Save ``credentials`` for ``registry``; other entries are kept.

    Returns the helper that holds the secret, None when it went into the file.
    """
    path = path or config_path()
    doc = _load(path)
    key = hosts.config_key(registry)
    helper = helper_for(doc, registry)
    if helper is not None:
        user = _TOKEN_USER if credentials.identity_token else credentials.username
        secret = credentials.identity_token or credentials.password
        request = json.dumps({"ServerURL": key, "Username": user, "Secret": secret}).encode()
        status, output = _run_helper(helper, "store", request)
        if status != 0:
            raise FailedPrecondition(
                f'credential helper "docker-credential-{helper}" could not store the credentials of {key}: '
                f"{output or f'exit status {status}'}"
            )
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        auths = {}
    for other in _keys(registry)[1:]:
        auths.pop(other, None)
    if helper is None:
        secret_text = f"{credentials.username}:{credentials.password}".encode()
        auths[key] = {"auth": base64.b64encode(secret_text).decode()}
    else:
        auths[key] = {}  # docker's marker: logged in, the secret is with the helper
    doc["auths"] = auths
    _write(path, doc)
    return helper


def erase(registry: str, path: Path | None = None) -> bool:
    """Forget the credentials of ``registry``, in its helper and in the file; True if any were found. Idempotent."""
    path = path or config_path()
    doc = _load(path)
    found = False
    auths = doc.get("auths")
    if isinstance(auths, dict):
        removed = [key for key in _keys(registry) if auths.pop(key, None) is not None]
        if removed:
            _write(path, doc)
            found = True
    helper = helper_for(doc, registry)
    if helper is not None:  # after the file: a helper that fails still leaves no entry there
        status, output = _run_helper(helper, "erase", hosts.config_key(registry).encode())
        if status == 0:
            found = True
        elif _NOT_FOUND not in output:
            raise FailedPrecondition(
                f'credential helper "docker-credential-{helper}" could not erase the credentials of '
                f"{hosts.config_key(registry)}: {output or f'exit status {status}'}"
            )
    return found
