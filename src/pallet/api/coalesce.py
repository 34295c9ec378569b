"""Concurrent identical reads answered by one computation, never by a stale one.

A hundred clients asking ``GET /containers/json`` at once need not make the
engine list and reconcile every container a hundred times. Requests with the
same key that arrive while a computation runs wait together and share the
*next* computation, which starts after all of them arrived: each answer is
computed after its request came in, so a client never sees a list older than
its own request (group commit, for reads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

T = TypeVar("T")


class _Batch(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


class Coalescer(Generic[T]):
    """``run(key, compute)``: ``compute()``'s value, shared with the requests of the same batch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gathering: dict[Hashable, _Batch[T]] = {}
        self._running: dict[Hashable, _Batch[T]] = {}

    def run(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            batch = self._gathering.get(key)
            leader = batch is None
            if batch is None:
                batch = self._gathering[key] = _Batch()
        if leader:
            self._lead(key, batch, compute)
        batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.value  # type: ignore[return-value]

    def _lead(self, key: Hashable, batch: _Batch[T], compute: Callable[[], T]) -> None:
        while True:  # the batch before ours first: ours must start after every member arrived
            with self._lock:
                running = self._running.get(key)
                if running is None:
                    del self._gathering[key]  # closed: later requests gather into a new batch
                    self._running[key] = batch
                    break
            running.done.wait()
        try:
            batch.value = compute()
        except Exception as e:  # noqa: BLE001 - handed to every member, which raises it
            batch.error = e
        finally:
            with self._lock:
                del self._running[key]
            batch.done.set()
