"""Fetch the children of a parent page concurrently, in order, with bounded memory.

dlt calls a child resource's generator once per parent page and, inside,
requests each parent's children one after the other: one request in flight.
Wrapping that generator, we call it per parent record on a small thread pool
and yield the child pages in parent order. At most one parent page's children
are held at a time, so memory does not grow with the number of parents; rate
limits still hold because every request goes through the source's one
transport (a Retry-After pauses the whole host, all workers included).
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

DEFAULT_CHILD_CONCURRENCY = 8


def fan_out(child_generator: Callable[..., Iterator[Any]], workers: int = DEFAULT_CHILD_CONCURRENCY) -> Callable[..., Iterator[Any]]:
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

        with ThreadPoolExecutor(max_workers=min(workers, len(parents)), thread_name_prefix="rest_assets_child") as pool:
            for pages in pool.map(children_of, parents):
                yield from pages

    return concurrent_children
