"""The Docker Engine API (1.41-1.47) over a unix socket: a thin translation onto the engine.

``pallet system service`` (``cli/service.py``) runs ``server.ApiServer``; the
docker CLI, docker-py and docker-compose talk to it unchanged. The layer
reaches the engine only through ``pallet.engine.service`` (an import-linter
contract), as the CLI does.

Where things are:

- ``server.py``: listeners (unix sockets, TLS tcp), one thread per
  connection, the headers every answer carries, errors as ``{"message"}``;
- ``versions.py`` (``/vX.Y`` prefixes), ``errors.py`` (statuses from
  ``pallet.errors`` categories), ``messages.py`` (``Request``; ``Json``,
  ``Empty``, ``Raw``, ``Stream``, ``Hijack`` answers), ``routing.py``;
- ``hijack.py``, ``framing.py``, ``attachments.py``: attach and exec streams;
- ``container_config.py``: a create's ``Config``/``HostConfig`` as ``RunOptions``;
- ``routes/<resource>.py``: the handlers, one module per resource.

Adding a route (say ``GET /containers/{name}/port``)::

    # routes/containers.py
    @ROUTES.route("GET", "/containers/{name}/port")
    def port(request: Request) -> Response:
        return Json(request.service.port(request.params["name"]))

The path is written without its version; ``{name}`` is one path segment,
``{name*}`` the rest of the path (image names with slashes). Raise a
``pallet.errors`` category for a failure: the server answers its status and
message. A new resource module goes into ``routes.MODULES``.
"""
