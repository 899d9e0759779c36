"""Keep requests in flight while dlt works: pages read ahead, children fetched concurrently, in order.

dlt asks a resource for its next page only after processing the last one,
and calls a child resource's generator once per batch of parent records,
requesting each parent's children one after the other: one request in flight,
and nothing fetched while dlt waits for the next parent page. Two wrappers fix
that:

* `read_ahead` runs a page stream on a background thread, a few pages ahead
  (top-level resources, when a run extracts several). For a child's
  (private) parent stream it also hands on batches of at least `min_records`
  parents: parent pages arrive while children are fetched, and the pool is
  not left half idle at the end of every 50-record page.
* `fan_out` calls the child generator per parent record on a small thread
  pool and yields the child pages in parent order, with a bounded number of
  parents in flight.

Memory is bounded by the read-ahead depth, one batch of parents and the
children of `PARENTS_IN_FLIGHT_PER_WORKER` parents per worker, whatever the
number of parents. Rate limits still hold: every request goes
through the source's one transport (a Retry-After pauses the whole host, all
workers included). Threads are named with dlt's pool prefix, so dlt state
(incremental cursors) resolves in them as in the extracting thread.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from rest_assets.dlt_internals import extraction_thread_prefix
from rest_assets.runtime.page_batches import join_pages

DEFAULT_CHILD_CONCURRENCY = 16
# Parents whose children are fetched or held at once, per worker: a batch of 5,000 parents is not all in memory.
PARENTS_IN_FLIGHT_PER_WORKER = 4
READ_AHEAD_PAGES = 4
_END = object()


def fan_out(
    child_generator: Callable[..., Iterator[Any]], workers: int = DEFAULT_CHILD_CONCURRENCY
) -> Callable[..., Iterator[Any]]:
    """Wrap a dlt child generator `f(items, ...)` to fetch each parent's children concurrently."""
    if workers <= 1:
        return child_generator

    @functools.wraps(child_generator)
    def concurrent_children(items: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        parents = items if isinstance(items, list) else [items]
        if len(parents) <= 1:
            yield from child_generator(items, *args, **kwargs)
            return

        def children_of(parent: Any) -> list[Any]:
            return list(child_generator([parent], *args, **kwargs))

        with ThreadPoolExecutor(
            max_workers=min(workers, len(parents)), thread_name_prefix=extraction_thread_prefix() + "rest_assets_child"
        ) as pool:
            in_flight: deque[Future[list[Any]]] = deque()
            try:
                for parent in parents:
                    in_flight.append(pool.submit(children_of, parent))
                    if len(in_flight) >= workers * PARENTS_IN_FLIGHT_PER_WORKER:
                        yield from in_flight.popleft().result()
                while in_flight:
                    yield from in_flight.popleft().result()
            finally:
                for future in in_flight:
                    future.cancel()

    return concurrent_children


def read_ahead(
    generator_function: Callable[..., Iterator[Any]], min_records: int, depth: int = READ_AHEAD_PAGES
) -> Callable[..., Iterator[Any]]:
    """Wrap a page generator to run `depth` pages ahead on a thread, yielding batches of >= `min_records` records.

    Pages (lists) are concatenated, in order, until a batch holds `min_records`
    records or the stream ends; anything else passes through in order. An
    error of the stream is raised after the records that came before it; when
    the consumer stops early, the stream is closed on its thread.
    """

    @functools.wraps(generator_function)
    def prefetched(*args: Any, **kwargs: Any) -> Iterator[Any]:
        pages: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
        stop = threading.Event()
        producer = threading.Thread(
            target=_produce,
            args=(generator_function(*args, **kwargs), pages, stop),
            name=extraction_thread_prefix() + "rest_assets_parent",
            daemon=True,
        )
        producer.start()
        ended: list[BaseException | None] = []
        try:
            yield from join_pages(_drain(pages, ended), min_records)
        finally:
            stop.set()
            producer.join()
        if ended and ended[0] is not None:
            raise ended[0]

    return prefetched


def _produce(stream: Iterator[Any], pages: queue.Queue[tuple[Any, BaseException | None]], stop: threading.Event) -> None:
    """Feed `stream`'s items into `pages` until it ends, fails, or `stop` is set; always ends with `_END`."""
    error: BaseException | None = None
    try:
        for item in stream:
            if not _put(pages, (item, None), stop):
                return
    except BaseException as failure:  # handed to the consumer, which raises it
        error = failure
    finally:
        if hasattr(stream, "close"):
            stream.close()
    _put(pages, (_END, error), stop)


def _put(
    pages: queue.Queue[tuple[Any, BaseException | None]], entry: tuple[Any, BaseException | None], stop: threading.Event
) -> bool:
    """Put `entry`, waiting for room; False when the consumer stopped first."""
    while not stop.is_set():
        try:
            pages.put(entry, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _drain(pages: queue.Queue[tuple[Any, BaseException | None]], ended: list[BaseException | None]) -> Iterator[Any]:
    """The stream's items from `pages` up to `_END`, whose error (None when it ended well) goes into `ended`."""
    while True:
        item, error = pages.get()
        if item is _END:
            ended.append(error)
            return
        yield item
