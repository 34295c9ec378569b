"""config.json mount options -> mount(2) flags, propagation flags and filesystem data (pure)."""

from __future__ import annotations

from pallet.linux import flags as f

# option -> (flag, True to set it / False to clear it)
_FLAG_OPTIONS: dict[str, tuple[int, bool]] = {
    "ro": (f.MS_RDONLY, True), "rw": (f.MS_RDONLY, False),
    "nosuid": (f.MS_NOSUID, True), "suid": (f.MS_NOSUID, False),
    "nodev": (f.MS_NODEV, True), "dev": (f.MS_NODEV, False),
    "noexec": (f.MS_NOEXEC, True), "exec": (f.MS_NOEXEC, False),
    "sync": (f.MS_SYNCHRONOUS, True), "async": (f.MS_SYNCHRONOUS, False),
    "dirsync": (f.MS_DIRSYNC, True),
    "remount": (f.MS_REMOUNT, True),
    "mand": (f.MS_MANDLOCK, True), "nomand": (f.MS_MANDLOCK, False),
    "noatime": (f.MS_NOATIME, True), "atime": (f.MS_NOATIME, False),
    "nodiratime": (f.MS_NODIRATIME, True), "diratime": (f.MS_NODIRATIME, False),
    "relatime": (f.MS_RELATIME, True), "norelatime": (f.MS_RELATIME, False),
    "strictatime": (f.MS_STRICTATIME, True), "nostrictatime": (f.MS_STRICTATIME, False),
    "nosymfollow": (f.MS_NOSYMFOLLOW, True), "symfollow": (f.MS_NOSYMFOLLOW, False),
    "lazytime": (f.MS_LAZYTIME, True), "nolazytime": (f.MS_LAZYTIME, False),
    "bind": (f.MS_BIND, True), "rbind": (f.MS_BIND | f.MS_REC, True),
}  # fmt: skip

PROPAGATION_OPTIONS: dict[str, int] = {
    "private": f.MS_PRIVATE, "rprivate": f.MS_PRIVATE | f.MS_REC,
    "shared": f.MS_SHARED, "rshared": f.MS_SHARED | f.MS_REC,
    "slave": f.MS_SLAVE, "rslave": f.MS_SLAVE | f.MS_REC,
    "unbindable": f.MS_UNBINDABLE, "runbindable": f.MS_UNBINDABLE | f.MS_REC,
}  # fmt: skip

# options that only steer the runtime (not the kernel): accepted and left out of data
_RUNTIME_ONLY = frozenset(("tmpcopyup", "idmap", "ridmap", "defaults"))


class MountOptions:
    """The parsed options of one mount."""

    __slots__ = ("data", "flags", "propagation")

    def __init__(self, flags: int, propagation: tuple[int, ...], data: str) -> None:
        self.flags = flags
        self.propagation = propagation
        self.data = data

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & f.MS_BIND)


def parse_options(options: tuple[str, ...] | list[str]) -> MountOptions:
    """Split ``options`` into flags, propagation changes (in order) and the data string."""
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    for option in options:
        known = _FLAG_OPTIONS.get(option)
        if known is not None:
            flag, on = known
            flags = flags | flag if on else flags & ~flag
        elif option in PROPAGATION_OPTIONS:
            propagation.append(PROPAGATION_OPTIONS[option])
        elif option not in _RUNTIME_ONLY:
            data.append(option)
    return MountOptions(flags, tuple(propagation), ",".join(data))
