"""pallet's own registry: the OCI distribution spec served from a directory.

Modules, from the disk up:

- ``storage``: the layout on disk (blobs by digest, per-repository links,
  upload sessions), atomic and safe under concurrent pushes.
- ``manifests``: what a pushed manifest must satisfy, and its referrers entry.
- ``routes``, ``pagination``, ``errorcodes``: the API's URL space, list
  pages and error bodies.
- ``tokens``, ``signingkey``, ``auth``: the three auth modes (none, htpasswd,
  token) and the token key kept in the storage directory.
- ``requestbody``, ``handlers``, ``server``: HTTP, one endpoint per handler.
- ``serve``: options to a running server, stopped cleanly by a signal.
"""

from __future__ import annotations

__all__: list[str] = []
