"""The command table of ``pallet``: every verb, the module that implements it, a summary.

The table is data only, so ``pallet --help`` lists every command without
importing any of them, and a command's module (with its imports) is loaded
only when that command runs (pip's lazy command table).

A command module provides, for each entry, a function ``configure(parser)``
named by the entry: it adds the command's flags to a ``FlagParser`` (``flags.py``) and
sets ``parser.set_defaults(run=handler)`` with ``handler(ctx, args) -> int``.
"""

from __future__ import annotations

__all__ = ["ALIASES", "COMMANDS", "GROUPS", "Command", "lookup"]


class Command:
    """One verb: ``module:function`` configures its parser."""

    __slots__ = ("function", "module", "name", "summary")

    def __init__(self, name: str, target: str, summary: str) -> None:
        module, _, function = target.partition(":")
        self.name = name
        self.module = "pallet.cli." + module
        self.function = function
        self.summary = summary


def _table(*entries: tuple[str, str, str]) -> dict[str, Command]:
    return {name: Command(name, target, summary) for name, target, summary in entries}


#: management groups: ``pallet image ls`` and friends
GROUPS: dict[str, tuple[str, dict[str, Command]]] = {
    "builder": (
        "Manage builds",
        _table(
            ("build", "build:configure_build", "Build an image from a Dockerfile"),
            ("prune", "build:configure_prune", "Remove build cache"),
        ),
    ),
    "container": (
        "Manage containers",
        _table(
            ("attach", "containers:configure_attach", "Attach to a running container's input and output"),
            ("create", "containers:configure_create", "Create a new container"),
            ("exec", "containers:configure_exec", "Execute a command in a running container"),
            ("inspect", "containers:configure_inspect", "Display detailed information on containers"),
            ("kill", "containers:configure_kill", "Kill one or more running containers"),
            ("logs", "containers:configure_logs", "Fetch the logs of a container"),
            ("ls", "containers:configure_ps", "List containers"),
            ("pause", "containers:configure_pause", "Pause all processes within one or more containers"),
            ("prune", "containers:configure_prune", "Remove all stopped containers"),
            ("rename", "containers:configure_rename", "Rename a container"),
            ("restart", "containers:configure_restart", "Restart one or more containers"),
            ("rm", "containers:configure_rm", "Remove one or more containers"),
            ("run", "containers:configure_run", "Create and run a new container from an image"),
            ("start", "containers:configure_start", "Start one or more stopped containers"),
            ("stop", "containers:configure_stop", "Stop one or more running containers"),
            ("unpause", "containers:configure_unpause", "Unpause all processes within containers"),
            ("update", "containers:configure_update", "Update configuration of one or more containers"),
            ("wait", "containers:configure_wait", "Wait for containers to stop; print exit codes"),
            (
                "commit",
                "container_fs:configure_commit",
                "Create a new image from a container's changes",
            ),
            (
                "cp",
                "container_fs:configure_cp",
                "Copy files/folders between a container and the local filesystem",
            ),
            ("diff", "container_fs:configure_diff", "Inspect changes to files or directories on a container"),
            ("export", "container_fs:configure_export", "Export a container's filesystem as a tar archive"),
            (
                "port",
                "container_fs:configure_port",
                "List port mappings or a specific mapping for the container",
            ),
            ("stats", "container_fs:configure_stats", "Display a live stream of container(s) resource usage"),
            ("top", "container_fs:configure_top", "Display the running processes of a container"),
        ),
    ),
    "image": (
        "Manage images",
        _table(
            ("build", "build:configure_build", "Build an image from a Dockerfile"),
            ("history", "images:configure_history", "Show the history of an image"),
            (
                "import",
                "archives:configure_import",
                "Import the contents from a tarball to create a filesystem image",
            ),
            ("inspect", "images:configure_inspect", "Display detailed information on one or more images"),
            ("load", "archives:configure_load", "Load an image from a tar archive or STDIN"),
            ("ls", "images:configure_ls", "List images"),
            ("prune", "images:configure_prune", "Remove unused images"),
            ("rm", "images:configure_rm", "Remove one or more images"),
            (
                "save",
                "archives:configure_save",
                "Save one or more images to a tar archive (streamed to STDOUT by default)",
            ),
            ("tag", "images:configure_tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
        ),
    ),
    "network": (
        "Manage networks",
        _table(
            ("connect", "networks:configure_connect", "Connect a container to a network"),
            ("create", "networks:configure_create", "Create a network"),
            ("disconnect", "networks:configure_disconnect", "Disconnect a container from a network"),
            ("inspect", "networks:configure_inspect", "Display detailed information on one or more networks"),
            ("ls", "networks:configure_ls", "List networks"),
            ("prune", "networks:configure_prune", "Remove all unused networks"),
            ("rm", "networks:configure_rm", "Remove one or more networks"),
        ),
    ),
    "registry": (
        "Run a registry",
        _table(
            (
                "garbage-collect",
                "registry:configure_garbage_collect",
                "Delete blobs no manifest references (the server must be stopped)",
            ),
            ("serve", "registry:configure_serve", "Serve the OCI distribution API from a directory"),
        ),
    ),
    "system": (
        "Manage pallet",
        _table(
            ("df", "system:configure_df", "Show pallet disk usage"),
            ("events", "events:configure_events", "Get real time events from the server"),
            ("info", "system:configure_info", "Display system-wide information"),
            ("prune", "system:configure_prune", "Remove unused data"),
            ("service", "service:configure_service", "Serve the Docker Engine API on a socket"),
        ),
    ),
    "volume": (
        "Manage volumes",
        _table(
            ("create", "volumes:configure_create", "Create a volume"),
            ("inspect", "volumes:configure_inspect", "Display detailed information on one or more volumes"),
            ("ls", "volumes:configure_ls", "List volumes"),
            ("prune", "volumes:configure_prune", "Remove unused local volumes"),
            ("rm", "volumes:configure_rm", "Remove one or more volumes"),
        ),
    ),
}


def _promoted(group: str, verbs: str) -> dict[str, Command]:
    """Group verbs (space-separated) docker also has at the top level: ``pallet run`` is ``pallet container run``."""
    verbs_of_group = GROUPS[group][1]
    return {verb: verbs_of_group[verb] for verb in verbs.split()}


#: verbs at the top level, as docker has them
COMMANDS: dict[str, Command] = {
    **_promoted(
        "container", "attach create exec kill logs pause rename restart rm run start stop unpause update wait"
    ),
    **_promoted("container", "commit cp diff export port stats top"),
    **_promoted("image", "history import load save tag"),
    **_promoted("builder", "build"),
    **_table(
        ("audit", "audit:configure_audit", "Report the settings that give containers' isolation away"),
        (
            "inspect",
            "inspect:configure_inspect",
            "Return low-level information on containers, images, networks and volumes",
        ),
        ("ps", "containers:configure_ps", "List containers"),
        ("events", "events:configure_events", "Get real time events from the server"),
        ("info", "system:configure_info", "Display system-wide information"),
        ("images", "images:configure_ls", "List images"),
        ("rmi", "images:configure_rm", "Remove one or more images"),
        ("login", "distribution:configure_login", "Log in to a registry"),
        ("logout", "distribution:configure_logout", "Log out from a registry"),
        ("pull", "distribution:configure_pull", "Download an image from a registry"),
        ("push", "distribution:configure_push", "Upload an image to a registry"),
    ),
}

#: other spellings of group verbs (docker accepts ``image list`` and ``image remove``)
ALIASES: dict[tuple[str, str], str] = {
    ("container", "list"): "ls",
    ("container", "ps"): "ls",
    ("container", "remove"): "rm",
    ("image", "list"): "ls",
    ("image", "remove"): "rm",
    ("network", "list"): "ls",
    ("network", "remove"): "rm",
    ("volume", "list"): "ls",
    ("volume", "remove"): "rm",
}


def lookup(group: str, verb: str) -> Command | None:
    """The command for ``pallet GROUP VERB`` (``group`` empty for top-level verbs)."""
    if not group:
        return COMMANDS.get(verb)
    entry = GROUPS.get(group)
    if entry is None:
        return None
    return entry[1].get(ALIASES.get((group, verb), verb))
