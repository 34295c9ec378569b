"""The shim zygote: one warm ``pallet-shim`` per run dir that forks each container's shim.

An exec'd shim is a fresh interpreter (~25 ms of CPU to start, ~3.7 MiB of
private memory for its container's life). A shim forked from a warm parent
starts at once and shares the interpreter's pages with it copy-on-write, so
each container costs only the pages its shim writes.

The protocol, over a ``SOCK_SEQPACKET`` unix socket in the abstract namespace
(``address``), one request per connection:

1. the engine (``launch.prelaunch``) connects and checks that the zygote runs
   as its own uid (``SO_PEERCRED``); the zygote checks the same of the engine;
2. the engine sends ``fork\\0<umask>\\0<0|1 preload>\\0<shim.json path>`` with
   its stderr, the report pipe's write end, the wait pipe's read end and,
   for a foreground run, its attach client's socket (``SCM_RIGHTS``);
3. the zygote forks; the child forks again and exits, so the shim is nobody's
   child (orphaned to init, as an exec'd shim is), in its own session; the
   shim then does exactly what an exec'd one does after its own fork
   (``main.serve``: child subreaper, waits for ``go``, supervises);
4. the zygote answers ``ok`` once forked, or ``stale`` (its code changed on
   disk since it loaded it: it has left its address and exits, the engine
   starts a new one), and closes the connection. Anything else, or nothing,
   and the engine execs a shim as it did before there was a zygote.

So the zygote is never on a container's path once its shim is forked: it
is not the shim's parent nor the container's reaper, and SIGKILL of the
zygote changes nothing for any running container. No zygote (killed, never
started, another network namespace): the engine execs that run's shim and
starts a zygote in the background (``start``) for the next runs.

The address names the run dir and this installation by device and inode, so
two engines never share a zygote. The zygote writes its pid to
``<run dir>/shim-zygote.pid`` and its own errors to
``<run dir>/shim-zygote.log``; it exits once its run dir is gone, or after
ten minutes without a request (the shims it forked live on regardless).
Hot path (imported by ``launch``): nothing beyond ``os`` at module level.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket

    from pallet.linux.libc import Libc

__all__ = ["PID_FILE", "address", "main", "start"]

PID_FILE = "shim-zygote.pid"
_LOG = "shim-zygote.log"
#: how often an idle zygote checks that its run dir is still there (ms)
_CHECK_MS = 5000
#: an idle zygote leaves after this long (s): nothing stays around for a run dir out of use
_IDLE_EXIT = 600
#: argv room for each forked shim's command line (its title names its container's shim.json)
_TITLE_ROOM = 1024
_PR_GET_DUMPABLE = 3
_MAX_FDS = 4


def address(run_root: str) -> str:
    """The zygote's abstract socket address for ``run_root`` and this installation (``OSError``: no run dir)."""
    here = os.stat(os.path.dirname(os.path.abspath(__file__)))
    run = os.stat(run_root)
    return f"\0pallet-shim-zygote/{run.st_dev:x}:{run.st_ino:x}/{here.st_dev:x}:{here.st_ino:x}"


def peer_uid(sock: _socket.socket) -> int:
    """The uid of the process at the other end of a connected unix socket."""
    import _socket

    cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)  # struct ucred: pid, uid, gid
    return int.from_bytes(cred[4:8], "little")


def start(run_root: str, command: list[str]) -> None:
    """Start a zygote for ``run_root`` in the background (``command`` runs ``pallet-shim``).

    Returns at once: the zygote is a grandchild, orphaned on purpose, in its
    own session. Idempotent in effect: of concurrent zygotes only one binds the
    address, the others exit.
    """
    from pallet.engine.runtimes import spawn

    argv = [*command, "--zygote", run_root, " " * _TITLE_ROOM]
    try:
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        pid = os.fork()
    except OSError:
        os.close(null)
        return
    if pid == 0:  # pragma: no cover - the go-between, covered by every zygote start
        try:
            # waits for the exec: once we return, the zygote's command line names its run dir
            spawn(argv[0], argv, [null, null, null], setsid=True)
        finally:
            os._exit(0)
    os.close(null)
    while True:
        try:
            os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            pass
        return


# --- the zygote process ------------------------------------------------------------------------


def main(args: list[str]) -> int:
    """``pallet-shim --zygote RUN_ROOT [ROOM]``: serve fork requests until the run dir is gone."""
    import _socket

    if not args or not os.path.isabs(args[0]):
        os.write(2, b"usage: pallet-shim --zygote RUN_ROOT\n")
        return 2
    run_root = args[0]
    try:
        ours = address(run_root)
    except OSError:
        return 1
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    try:
        listener.bind(ours)  # the claim: of concurrent zygotes, the first to bind serves
    except OSError:
        return 0
    os.chdir("/")
    log = os.open(os.path.join(run_root, _LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    os.dup2(log, 2)
    os.close(log)
    from pallet.linux.atomicfile import write_atomic

    write_atomic(os.path.join(run_root, PID_FILE), str(os.getpid()).encode())
    libc = _warm()
    code = _loaded_code()
    listener.listen(64)
    _serve(listener, run_root, ours, code, libc)
    listener.close()
    _unlink_pid_file(run_root)
    os._exit(0)


def _warm() -> Libc:
    """Load everything a shim runs and run what it can of it, then freeze it all: the children
    share these pages, and what ran here once (ctypes' call path, the config parser, Python's
    specialised bytecode) writes less in each of them. Returns the libc the shims use."""
    import gc

    from pallet.engine.shim import config
    from pallet.engine.shim.main import load_modules
    from pallet.linux.libc import Libc

    load_modules()
    libc = Libc()
    libc.prctl(_PR_GET_DUMPABLE)
    sample = (
        '{"id": "0", "bundle": "/", "runtime_name": "crun", "runtime_path": "/", "runtime_root": "/", '
        '"run_dir": "/", "log_path": "/", "exit_command": [], "runtime_args": []}'
    )
    for _ in range(10):
        config.parse(sample.encode(), "sample")
    try:
        from pallet.runtime.cli import preload  # pallet-runtime runs in the shim's forked children

        preload(stop=lambda: False)
    except ImportError:
        pass
    gc.collect()
    gc.freeze()  # the collector never writes to what the children inherit
    _fill_pools()
    return libc


#: what ``_fill_pools`` allocated: kept for the zygote's life, never touched again
_BALLAST: list[object] = []


def _fill_pools() -> None:
    """Fill the free blocks of the allocator's partly used pools, so that what a child allocates
    lands in fresh pools, side by side, instead of in free slots scattered over the pages it
    shares with us: each of those would cost it a page copy.

    How many free blocks each size class has, Python's allocator says in
    ``sys._debugmallocstats`` (on stderr, read here through a memfd). Best effort.
    """
    import sys

    try:
        out = os.memfd_create("mallocstats", os.MFD_CLOEXEC)
    except OSError:
        return
    saved = os.dup(2)
    try:
        os.dup2(out, 2)
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    text = os.pread(out, 1 << 20, 0)
    os.close(out)
    wanted: list[tuple[int, int]] = []
    for line in text.split(b"\n"):
        fields = line.split()
        if len(fields) == 5 and all(f.isdigit() for f in fields):  # class size pools used free
            size, free = int(fields[1]), int(fields[4])
            if free > 0:
                wanted.append((size, free))
    _BALLAST.extend([None] * sum(n for _, n in wanted))  # the list itself first: one allocation
    i = 0
    for size, free in wanted:
        for _ in range(free):
            _BALLAST[i] = _block(size)
            i += 1


def _block(size: int) -> object:
    """A new object that takes one block of ``size`` bytes from the small-object allocator."""
    if size <= 16:
        return object()
    if size <= 32:
        return float(len(_BALLAST)) + 0.5  # 24 bytes
    return bytes(size - 33)  # 33 bytes of header and terminator, then the data


def _loaded_code() -> dict[str, int]:
    """The source files of pallet's loaded modules, with their mtimes: a change means a stale zygote."""
    import sys

    out = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.startswith("pallet") and isinstance(path, str):
            try:
                out[path] = os.stat(path).st_mtime_ns
            except OSError:
                continue
    return out


def _stale(code: dict[str, int]) -> bool:
    for path, mtime in code.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return True
        except OSError:
            return True
    return False


def _serve(listener: _socket.socket, run_root: str, ours: str, code: dict[str, int], libc: Libc) -> None:
    import _socket
    import select
    import time

    poller = select.poll()
    poller.register(listener.fileno(), select.POLLIN)
    last = time.monotonic()
    while True:
        if not poller.poll(_CHECK_MS):
            try:
                if address(run_root) != ours:
                    return  # the run dir was removed (and maybe made anew): not ours any more
            except OSError:
                return
            if time.monotonic() - last > _IDLE_EXIT:
                return  # the next run execs its shim and starts a new zygote
            continue
        last = time.monotonic()
        try:
            fd, _ = listener._accept()  # type: ignore[attr-defined]  # _socket's accept
        except OSError:
            continue
        conn = _socket.socket(fileno=fd)
        try:
            if _answer(conn, listener, code, libc) == "stale":
                return
        except (OSError, ValueError) as e:  # that request fails (its engine execs a shim), not the next
            os.write(2, f"pallet-shim zygote: {e}\n".encode())
        finally:
            conn.close()


def _answer(conn: _socket.socket, listener: _socket.socket, code: dict[str, int], libc: Libc) -> str:
    """Serve one request on ``conn``: fork a shim; what was done (``ok``, ``stale``, ``refused``)."""
    import _socket

    conn.settimeout(2.0)  # a client that connects and says nothing must not hold up the others
    if peer_uid(conn) != os.geteuid():
        return "refused"
    msg, ancillary, _, _ = conn.recvmsg(4096, _socket.CMSG_SPACE(4 * _MAX_FDS), _socket.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data) - 3, 4)]
    try:
        parts = msg.split(b"\0")
        if len(parts) != 4 or parts[0] != b"fork" or len(fds) not in (3, 4):
            return "refused"
        if _stale(code):
            listener.close()  # the address is free for a new zygote before the engine hears
            conn.send(b"stale")
            return "stale"
        umask, preload, config_path = int(parts[1]), parts[2] == b"1", os.fsdecode(parts[3])
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the shim's side, covered by every forked shim
            _child(listener, conn, fds, umask=umask, preload=preload, path=config_path, libc=libc)
        conn.send(b"ok")
        _reap(pid)
        return "ok"
    finally:
        for fd in fds:
            os.close(fd)


def _child(
    listener: _socket.socket,
    conn: _socket.socket,
    fds: list[int],
    *,
    umask: int,
    preload: bool,
    path: str,
    libc: Libc,
) -> None:
    """In the zygote's child: become a shim that is nobody's child, then its life (never returns)."""
    code = 1
    try:
        listener.close()
        conn.close()
        os.setsid()
        if os.fork():
            os._exit(0)  # the zygote reaps this one; the shim is orphaned on purpose
        from pallet.engine.shim import main

        stderr, report_fd, wait_fd = fds[:3]
        client_fd = fds[3] if len(fds) > 3 else -1
        os.dup2(stderr, 2)  # the engine's, until ``go``, as for an exec'd shim
        os.close(stderr)
        os.umask(umask)
        _retitle(path)
        code = main.supervise(
            lambda: main.serve(path, report_fd, wait_fd, client_fd, preload, libc=libc), report_fd
        )
    finally:
        os._exit(code)


def _retitle(path: str) -> None:
    """Our command line (``/proc/self/cmdline``) becomes ``… pallet-shim --forked <shim.json>``: ps,
    pgrep and reconcile know a shim by the ``shim.json`` its command line names. Written in place
    over the zygote's argv (``_TITLE_ROOM`` bytes of it are spare); best effort."""
    try:
        fields = _read("/proc/self/stat", 4096).rpartition(b")")[2].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49)
        words = _read("/proc/self/cmdline", end - start + 1).split(b"\0")
        head = words[: words.index(b"--zygote")] if b"--zygote" in words else [b"pallet-shim"]
        room = end - start
        text = b"\0".join([*head, b"--forked", os.fsencode(path)])[: room - 1]
        fd = os.open("/proc/self/mem", os.O_RDWR)
        try:
            os.pwrite(fd, text + b"\0" * (room - len(text)), start)
        finally:
            os.close(fd)
    except (OSError, ValueError, IndexError):
        return


def _read(path: str, size: int) -> bytes:
    """The first ``size`` bytes of a file, without a file object or a large buffer: each page a
    forked shim writes is a copy it keeps."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def _reap(pid: int) -> None:
    while True:
        try:
            os.waitpid(pid, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return
        return


def _unlink_pid_file(run_root: str) -> None:
    path = os.path.join(run_root, PID_FILE)
    try:
        with open(path, "rb") as f:
            if f.read().strip() != str(os.getpid()).encode():
                return  # a newer zygote's
        os.unlink(path)
    except OSError:
        return
