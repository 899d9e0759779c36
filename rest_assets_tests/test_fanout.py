"""Concurrent child fetching: parent order kept, concurrency bounded, errors not swallowed."""

import inspect
import threading
import time

import pytest

from rest_assets.runtime.fanout import fan_out


class ChildApi:
    """A fake child generator that records how many parents are fetched at once."""

    def __init__(self, fail_on=None):
        self.active = self.peak = 0
        self.lock = threading.Lock()
        self.fail_on = fail_on

    def generate(self, items, path, limit=10):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            for parent in items:
                if parent["id"] == self.fail_on:
                    raise RuntimeError(f"child request for parent {parent['id']} failed")
                time.sleep(0.01)  # stands in for network latency, so workers overlap
                yield [{"id": parent["id"] * 10 + k, "parent": parent["id"]} for k in range(2)]
        finally:
            with self.lock:
                self.active -= 1


def test_children_come_back_in_parent_order_with_bounded_concurrency():
    api = ChildApi()
    parents = [{"id": i} for i in range(1, 21)]
    pages = list(fan_out(api.generate, workers=4)(parents, "/children"))
    assert [page[0]["parent"] for page in pages] == list(range(1, 21))
    assert sum(len(page) for page in pages) == 40
    assert 1 < api.peak <= 4


def test_one_worker_is_the_plain_sequential_generator():
    generate = ChildApi().generate
    assert fan_out(generate, workers=1) is generate


def test_a_failing_child_request_fails_the_whole_fan_out():
    api = ChildApi(fail_on=7)
    with pytest.raises(RuntimeError, match="parent 7"):
        list(fan_out(api.generate, workers=4)([{"id": i} for i in range(1, 11)], "/children"))


def test_the_wrapper_keeps_the_signature_dlt_binds_arguments_by():
    assert list(inspect.signature(fan_out(ChildApi().generate, 4)).parameters) == ["items", "path", "limit"]
