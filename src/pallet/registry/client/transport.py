"""HTTP for the registry client: pooled keep-alive connections, TLS policy, redirects, proxies.

Built on ``urllib3`` rather than ``http.client``: layers are fetched by several
threads at once, and urllib3's pools are thread-safe and keep connections
alive per host; it also gives proxy tunnelling (``CONNECT``), retries of
idempotent requests on a stale pooled connection, and sane TLS defaults — all
of which ``http.client`` would leave to us. Its import (~90 ms) is paid only by
``pull``/``push``/``login``, never by ``run``.

Contracts:

- HTTPS with certificate verification, except for registries that
  ``hosts.is_insecure`` allows: those get HTTPS without verification, falling
  back to plain HTTP (docker's behaviour), decided once per registry by
  ``Transport.base_url``.
- Redirects (blob downloads are often redirected to storage) are followed here,
  not by urllib3, so that the ``Authorization`` header is dropped whenever the
  redirect leaves the original host.
- Network failures become ``errors.Unreachable``, TLS failures
  ``errors.TLSFailure``: never a urllib3 traceback.
- ``$HTTPS_PROXY``/``$HTTP_PROXY``/``$NO_PROXY`` are honoured; loopback
  registries are never proxied.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse

import urllib3
from urllib3.exceptions import HTTPError, SSLError

from pallet.registry.client import hosts
from pallet.registry.client.errors import TLSFailure, Unreachable

__all__ = ["Transport"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import BinaryIO

    from urllib3 import BaseHTTPResponse

    #: a request body: bytes, or a function that opens it afresh (so a request can be re-sent)
    Body = bytes | Callable[[], BinaryIO] | None

# urllib3 logs each retry as a WARNING, which Python would print to stderr: failures are ours to report
logging.getLogger("urllib3").setLevel(logging.ERROR)
# unverified TLS happens only for registries the user (or docker's loopback rule) made insecure
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

_USER_AGENT = "pallet/0.1 (+registry client)"
_MAX_REDIRECTS = 5
_POOL_SIZE = 8  # parallel layer downloads per host, plus a spare


def _proxy_for(url: str) -> str | None:
    import urllib.request

    host = urllib.parse.urlsplit(url).hostname or ""
    if hosts.is_insecure(host):  # localhost, 127.0.0.0/8, ::1: never through a proxy
        return None
    proxies = urllib.request.getproxies_environment()
    if not proxies or urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
        return None
    return proxies.get(urllib.parse.urlsplit(url).scheme)


class Transport:
    """Connection pools for one ``pallet`` command; safe to use from several threads."""

    def __init__(self, *, insecure: tuple[str, ...] = ()) -> None:
        self.insecure = insecure
        timeout = urllib3.Timeout(connect=30.0, read=300.0)
        # idempotent requests are retried on a broken pooled connection; statuses are ours
        retries = urllib3.Retry(total=2, connect=2, read=0, redirect=False, status=0, raise_on_status=False)
        common: dict[str, object] = {
            "timeout": timeout,
            "retries": retries,
            "maxsize": _POOL_SIZE,
            "block": False,
            "blocksize": 1 << 20,  # upload bodies go out in 1 MiB pieces, not urllib3's 16 KiB
        }
        self._verified = urllib3.PoolManager(num_pools=16, cert_reqs="CERT_REQUIRED", **common)  # type: ignore[arg-type]
        self._unverified = urllib3.PoolManager(num_pools=16, cert_reqs="CERT_NONE", **common)  # type: ignore[arg-type]
        self._proxies: dict[tuple[str, bool], urllib3.ProxyManager] = {}
        self._bases: dict[str, str] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._verified.clear()
        self._unverified.clear()
        for proxy in self._proxies.values():
            proxy.clear()

    # --- where a registry lives -------------------------------------------------------------------

    def base_url(self, registry: str) -> str:
        """``https://host`` or, for an insecure registry that does not speak TLS, ``http://host``."""
        with self._lock:
            known = self._bases.get(registry)
        if known is not None:
            return known
        host = hosts.api_host(registry)
        base = f"https://{host}"
        if hosts.is_insecure(registry, self.insecure):
            try:
                self.request("GET", f"{base}/v2/", registry=registry, retries=False).drain_conn()
            except (TLSFailure, Unreachable):
                base = f"http://{host}"
        with self._lock:
            self._bases[registry] = base
        return base

    def _manager(self, url: str, registry: str) -> urllib3.PoolManager:
        verify = not hosts.is_insecure(registry, self.insecure)
        proxy = _proxy_for(url)
        if proxy is None:
            return self._verified if verify else self._unverified
        with self._lock:
            manager = self._proxies.get((proxy, verify))
            if manager is None:
                manager = urllib3.ProxyManager(proxy, cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE")
                self._proxies[(proxy, verify)] = manager
        return manager

    # --- requests ---------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        registry: str,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        retries: bool = True,
    ) -> BaseHTTPResponse:
        """Send one request, following redirects; the caller checks the status.

        With ``stream`` the body is left unread (read it, then ``release_conn()``);
        otherwise it is read into ``response.data`` and the connection reused.
        """
        sent = {"User-Agent": _USER_AGENT, **(headers or {})}
        origin = urllib.parse.urlsplit(url).netloc
        for _ in range(_MAX_REDIRECTS + 1):
            payload = body() if callable(body) else body
            try:
                response = self._manager(url, registry).request(
                    method,
                    url,
                    headers=sent,
                    body=payload,
                    redirect=False,
                    preload_content=not stream,
                    decode_content=False,
                    # a streamed body cannot be replayed; a probe must fail fast
                    retries=None if retries and (payload is None or isinstance(payload, bytes)) else False,
                )
            except SSLError as e:
                raise self._tls_error(registry, e) from None
            except HTTPError as e:
                raise self._network_error(registry, url, e) from None
            except OSError as e:  # a body file that cannot be read is not a network failure
                raise Unreachable(f"cannot send to registry {registry}: {e}") from None
            finally:
                if payload is not None and not isinstance(payload, bytes):
                    payload.close()
            location = response.headers.get("Location")
            if response.status not in (301, 302, 303, 307, 308) or not location:
                return response
            response.drain_conn()
            response.release_conn()
            url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(url).netloc != origin:
                # storage backends get a signed URL; our registry token must not leak to them
                sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
            if response.status == 303:
                method, body = "GET", None
        raise Unreachable(
            f"registry {registry} redirected more than {_MAX_REDIRECTS} times; it is misconfigured"
        )

    @staticmethod
    def _tls_error(registry: str, error: Exception) -> TLSFailure:
        reason = str(getattr(error, "reason", None) or error)
        hint = (
            f"if {registry} is a local registry without a trusted certificate, add it to the insecure "
            f'registries (--insecure-registry {registry}, or "insecure-registries" in registries.json)'
        )
        return TLSFailure(f"x509: TLS with registry {registry} failed: {reason}; {hint}")

    @classmethod
    def _network_error(cls, registry: str, url: str, error: HTTPError) -> Exception:
        reason = getattr(error, "reason", None) or error
        if isinstance(reason, SSLError):
            return cls._tls_error(registry, reason)
        text = str(reason)
        if "Connection refused" in text:
            text = "connection refused"
        elif "Name or service not known" in text or "Temporary failure in name resolution" in text:
            text = "no such host"
        elif "timed out" in text.lower():
            text = "timed out"
        host = urllib.parse.urlsplit(url).netloc
        where = registry if host == registry else f"{registry} ({host})"
        return Unreachable(
            f"cannot reach registry {where}: {text}; check the name, the network, and that the registry is running"
        )
