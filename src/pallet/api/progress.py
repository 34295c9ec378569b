"""docker's JSON message stream for long image work (pull, push, load, import), and its worker thread.

The work runs in a thread of its own and reports through ``JsonProgress``
(the registry client's ``Progress`` interface), which queues docker's
messages — ``{"status", "id", "progressDetail": {"current", "total"},
"progress"}`` per layer, ``{"stream": …}`` lines, a final ``aux`` — for the
answer's stream. A failure after the head was sent is docker's
``{"errorDetail": {"message"}, "error"}`` message.

A client that goes away closes the stream (``messages``' ``finally``): the
work is cancelled at its next progress report (the progress raises
``Cancelled``) and waited for, so nothing is left half-stored: the content
store writes each blob to a temp file and renames it once verified, and a
pull records the image only once every layer is in.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator

from pallet.errors import PalletError, Unavailable
from pallet.registry.client.progress import Progress

__all__ = ["Cancelled", "JsonProgress", "collected", "error_message", "messages"]

#: how much a layer moves between two "Downloading"/"Pushing" messages (docker sends about as many)
_STEP = 512 * 1024
#: how long a closed stream waits for its cancelled work to stop
_JOIN_SECONDS = 120.0
_BAR_WIDTH = 50


class Cancelled(Unavailable):
    """The client that asked for the work went away."""

    category = Unavailable.category


def _human(size: float) -> str:
    """go-units' HumanSize (decimal), as docker's progress bar shows sizes."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000:
            return f"{size:.4g}{unit}"
        size /= 1000
    return f"{size:.4g}PB"


def _bar(current: int, total: int) -> str:
    """docker's ``progress`` text: ``[=====>      ]  1.44MB/1.986MB``."""
    if total <= 0:
        return _human(current)
    filled = min(_BAR_WIDTH, current * _BAR_WIDTH // total)
    return f"[{'=' * filled}>{' ' * (_BAR_WIDTH - filled)}] {_human(current):>8}/{_human(total)}"


def error_message(error: PalletError) -> dict[str, object]:
    return {"errorDetail": {"message": error.message}, "error": error.message}


class JsonProgress(Progress):
    """Queues docker's progress messages; raises ``Cancelled`` once ``cancel`` was called."""

    def __init__(self, moving: str) -> None:
        #: the status of a layer in flight: ``Downloading`` (pull) or ``Pushing`` (push)
        self.moving = moving
        self.queue: queue.Queue[dict[str, object] | None] = queue.Queue()
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._sizes: dict[str, list[int]] = {}  # key -> [current, total, last reported]
        self._phases: dict[str, str] = {}  # key -> the status of its byte counts, if not ``moving``

    def cancel(self) -> None:
        self._cancelled.set()

    def _check(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled("the client went away; the transfer was stopped")

    def put(self, message: dict[str, object]) -> None:
        self._check()
        self.queue.put(message)

    def start(self, key: str, total: int, status: str) -> None:
        with self._lock:
            self._sizes[key] = [0, total, 0]
        self.put({"status": status, "progressDetail": {}, "id": key})

    def advance(self, key: str, n: int) -> None:
        with self._lock:
            size = self._sizes.setdefault(key, [0, 0, 0])
            size[0] += n
            current, total, last = size
            if current - last < _STEP and current != total:
                self._check()
                return
            size[2] = current
        self.put(
            {
                "status": self._phases.get(key, self.moving),
                "progressDetail": {"current": current, "total": total},
                "progress": _bar(current, total),
                "id": key,
            }
        )

    def status(self, key: str, text: str) -> None:
        self.put({"status": text, "progressDetail": {}, "id": key})

    def phase(self, key: str, text: str) -> None:
        # dockerd sends "Downloading"/"Extracting"/"Pushing" only with byte counts (``advance``)
        with self._lock:
            self._phases[key] = text
        self._check()

    def message(self, text: str) -> None:
        tag, sep, rest = text.partition(": ")
        if sep and rest.startswith("Pulling from "):  # docker: the tag is the message's id
            self.put({"status": rest, "id": tag})
        else:
            self.put({"status": text})


def messages(
    progress: JsonProgress,
    work: Callable[[], None],
    *,
    held: Callable[[dict[str, object]], bool] = lambda _: False,
) -> Iterator[bytes]:
    """Run ``work`` in a thread; its progress messages as docker's JSON lines, a late error as the last one.

    As dockerd, the answer starts only with the first message that is not
    ``held`` (a pull's "Pulling from" comes before the registry is asked
    anything): work that fails before it raises here, so the client gets the
    error's status (a 404 for an unknown image, a 401 for bad credentials)
    instead of a 200 and a message. Closing the iterator before the end
    cancels the work and waits for it to stop.
    """
    failure: list[PalletError] = []

    def run() -> None:
        try:
            work()
        except PalletError as e:
            failure.append(e)
        except Exception as e:  # a bug: logged, and reported on the stream, which has sent its 200 already
            logging.getLogger("pallet.api").exception("image work failed")
            failure.append(Unavailable(f"internal error: {e}"))
        finally:
            progress.queue.put(None)

    thread = threading.Thread(target=run, name="api image work", daemon=True)
    thread.start()
    first: list[dict[str, object]] = []
    while (message := progress.queue.get()) is not None:
        first.append(message)
        if not held(message):
            break
    else:
        thread.join()
        if failure:
            raise failure[0]
        return iter([json.dumps(m).encode() + b"\n" for m in first])
    return _rest(progress, thread, first, failure)


def _rest(
    progress: JsonProgress,
    thread: threading.Thread,
    first: list[dict[str, object]],
    failure: list[PalletError],
) -> Iterator[bytes]:
    try:
        for early in first:
            yield json.dumps(early).encode() + b"\n"
        while (message := progress.queue.get()) is not None:
            yield json.dumps(message).encode() + b"\n"
        thread.join()
        if failure and not isinstance(failure[0], Cancelled):
            yield json.dumps(error_message(failure[0])).encode() + b"\n"
    finally:
        if thread.is_alive():
            progress.cancel()
            thread.join(_JOIN_SECONDS)


def collected(progress: JsonProgress, work: Callable[[], None]) -> list[bytes]:
    """Run ``work`` here and now; its progress messages as docker's JSON lines.

    For work that reads the request's body (load, import): the body is read
    before the answer starts, so an error is the answer's status (400 for a
    bad archive), not a message after a 200.
    """
    work()
    progress.queue.put(None)
    return [json.dumps(m).encode() + b"\n" for m in iter(progress.queue.get, None)]
