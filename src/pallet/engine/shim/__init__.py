"""``pallet-shim``: the per-container supervisor that lets a container outlive its manager.

One shim runs per running container, detached from whoever started it (own
session, child subreaper). It owns the container's stdio or pty master, writes
the json-file log, records each exit in ``exit.json``, serves ``attach.sock``
and applies the restart policy. Modules:

- ``config``: ``ShimConfig``, the ``shim.json`` the engine writes for it;
- ``launch``: ``launch()``, how the engine starts a shim and learns the result;
- ``main`` / ``supervisor``: the shim process itself (standard library only);
- ``logfile``: docker's json-file log, its rotation and its reader;
- ``attach``: the attach socket protocol and its client;
- ``exitfile``: the files the shim leaves for the engine (``init.json``, ``exit.json``).

This package's ``__init__`` imports nothing: the shim process must start light.
"""
