"""Pages of records joined, in order, into batches (for runtime.arrow_pages and runtime.fanout)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any


def _is_page_of_records(item: Any) -> bool:
    """A list of dicts: what a resource's page generator yields for a page."""
    return isinstance(item, list) and all(issubclass(kind, dict) for kind in set(map(type, item)))


def join_pages(
    items: Iterable[Any],
    min_records: int,
    finish: Callable[[list[dict[str, Any]]], Iterable[Any]] = lambda batch: (batch,),
) -> Iterator[Any]:
    """Pages of records joined into batches of at least `min_records` records (the rest when the items end).

    Each batch is handed on as the items of `finish(batch)` (the list itself by default).
    Anything that is not a page of records (e.g. dlt's deferred calls) passes
    through in order, after the records that came before it.
    """
    batch: list[dict[str, Any]] = []
    for item in items:
        if not _is_page_of_records(item):
            if batch:
                yield from finish(batch)
                batch = []
            yield item
            continue
        batch.extend(item)
        if len(batch) >= min_records:
            yield from finish(batch)
            batch = []
    if batch:
        yield from finish(batch)
