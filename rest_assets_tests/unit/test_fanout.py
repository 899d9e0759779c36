"""Concurrent child fetching: parent order kept, concurrency bounded, errors not swallowed; parent read-ahead."""

import inspect
import queue
import threading
from types import SimpleNamespace

import pytest

from rest_assets.runtime import fanout
from rest_assets.runtime.fanout import fan_out, read_ahead


class ChildApi:
    """A fake child generator that records how many parents are fetched at once.

    With `together=N`, each call waits at a barrier until N calls are in flight: a pool that
    runs fewer than N at once never gets past it (BrokenBarrierError), whatever the timing.
    """

    def __init__(self, fail_on=None, together=None):
        self.active = self.peak = 0
        self.lock = threading.Lock()
        self.fail_on = fail_on
        self.barrier = threading.Barrier(together, timeout=10) if together else None

    def generate(self, items, path, limit=10):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            if self.barrier is not None:
                self.barrier.wait()
            for parent in items:
                if parent["id"] == self.fail_on:
                    raise RuntimeError(f"child request for parent {parent['id']} failed")
                yield [{"id": parent["id"] * 10 + k, "parent": parent["id"]} for k in range(2)]
        finally:
            with self.lock:
                self.active -= 1


def test_children_come_back_in_parent_order_with_bounded_concurrency():
    api = ChildApi(together=4)  # 20 parents on 4 workers: five rounds of four calls in flight at once
    parents = [{"id": i} for i in range(1, 21)]
    pages = list(fan_out(api.generate, workers=4)(parents, "/children"))
    assert [page[0]["parent"] for page in pages] == list(range(1, 21))
    assert sum(len(page) for page in pages) == 40
    assert api.peak == 4


def test_a_large_batch_of_parents_holds_a_bounded_number_of_parents_children_at_once():
    started = []
    lock = threading.Lock()

    def generate(items, path):
        with lock:
            started.append(items[0]["id"])
        yield [{"parent": items[0]["id"]}]

    parents = [{"id": i} for i in range(5_000)]
    window = 2 * fanout.PARENTS_IN_FLIGHT_PER_WORKER
    for page in fan_out(generate, workers=2)(parents, "/children"):
        consumed = page[0]["parent"] + 1
        with lock:
            assert len(started) - consumed < window, "children were fetched for more parents than the window"
    assert sorted(started) == list(range(5_000))


def test_one_worker_is_the_plain_sequential_generator():
    generate = ChildApi().generate
    assert fan_out(generate, workers=1) is generate


def test_a_failing_child_request_fails_the_whole_fan_out():
    api = ChildApi(fail_on=7)
    with pytest.raises(RuntimeError, match="parent 7"):
        list(fan_out(api.generate, workers=4)([{"id": i} for i in range(1, 11)], "/children"))


def test_the_wrapper_keeps_the_signature_dlt_binds_arguments_by():
    assert list(inspect.signature(fan_out(ChildApi().generate, 4)).parameters) == ["items", "path", "limit"]


class ParentStream:
    """A fake parent page generator that records how far it was read and whether it was closed."""

    def __init__(self, pages, fail_after=None):
        self.pages, self.fail_after = pages, fail_after
        self.produced = 0
        self.closed = threading.Event()
        self.threads = set()

    def generate(self, path, limit=50):
        try:
            for number, page in enumerate(self.pages, start=1):
                self.threads.add(threading.current_thread().name)
                yield page
                self.produced = number
                if number == self.fail_after:
                    raise RuntimeError(f"parent page {number + 1} failed")
        finally:
            self.closed.set()


def _pages(count, size):
    return [[{"id": page * size + k} for k in range(size)] for page in range(count)]


def test_read_ahead_hands_on_every_record_in_order_in_batches_of_at_least_min_records():
    stream = ParentStream(_pages(7, 50))
    batches = list(read_ahead(stream.generate, min_records=120)("/parents"))
    assert [len(b) for b in batches] == [150, 150, 50]  # whole pages joined; the rest flushed at the end
    assert [r["id"] for b in batches for r in b] == list(range(350))
    assert stream.threads and threading.current_thread().name not in stream.threads  # fetched on its own thread
    assert all(name.startswith("dlt-pool-") for name in stream.threads)  # dlt state resolves there


def test_read_ahead_raises_the_streams_error_after_the_records_before_it():
    stream = ParentStream(_pages(5, 10), fail_after=3)
    seen = []
    with pytest.raises(RuntimeError, match="parent page 4 failed"):
        for batch in read_ahead(stream.generate, min_records=1)("/parents"):
            seen.extend(r["id"] for r in batch)
    assert seen == list(range(30))


class WatchedQueue(queue.Queue):
    """A queue.Queue that says when a put found it full (the producer is held back)."""

    found_full = threading.Event()

    def put(self, item, block=True, timeout=None):
        try:
            super().put(item, block, timeout)
        except queue.Full:
            WatchedQueue.found_full.set()
            raise


def test_read_ahead_stays_a_bounded_number_of_pages_ahead_and_stops_when_the_consumer_does(monkeypatch):
    WatchedQueue.found_full = threading.Event()
    monkeypatch.setattr(fanout, "queue", SimpleNamespace(Queue=WatchedQueue, Full=queue.Full))
    stream = ParentStream(_pages(1_000, 1))
    batches = read_ahead(stream.generate, min_records=1, depth=3)("/parents")
    assert next(batches) == [{"id": 0}]
    assert WatchedQueue.found_full.wait(10), "the producer was never held back by a full queue"
    assert stream.produced <= 1 + 3 + 1  # the page handed on, the queue, and one waiting to be put
    batches.close()
    assert stream.closed.wait(30)
    assert stream.produced < 1_000


def test_read_ahead_passes_other_items_through_in_order():
    marker = object()
    stream = ParentStream([[{"id": 1}], marker, [{"id": 2}], [{"id": 3}]])
    assert list(read_ahead(stream.generate, min_records=5)("/parents")) == [[{"id": 1}], marker, [{"id": 2}, {"id": 3}]]


def test_read_ahead_keeps_the_signature_dlt_binds_arguments_by():
    assert list(inspect.signature(read_ahead(ParentStream([]).generate, 10)).parameters) == ["path", "limit"]
