"""A response body is read within the request's timeout in all, and up to a size once decompressed.

Against a real socket server: requests' own timeout is per socket read, so a
body that drips in never times out, and a small gzip body inflates whole.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from rest_assets.errors import HttpError, ResponseTooLargeError
from rest_assets.runtime.http import GuardedSession
from rest_assets.runtime.retry import RetryPolicy

PAGE = json.dumps({"data": [{"id": i, "name": f"row {i}"} for i in range(50)]}).encode()


@contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A server on a free port that reads each request's head, then lets `answer` write to the socket."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += connection.recv(4096)
                try:
                    answer(connection)
                except OSError:  # the client hung up first
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def head(length: int, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n".encode()


def session(url: str, timeout: float = 60, max_response_mib: float = 256) -> GuardedSession:
    return GuardedSession(
        source="shop",
        allowed_hosts={url.split("://")[1]},
        routes=[],
        default_policy=RetryPolicy(max_retries=0),
        timeout=timeout,
        sleep=lambda _: None,
        allow_insecure_http=True,
        max_response_mib=max_response_mib,
    )


def dripping(connection: socket.socket) -> None:
    connection.sendall(head(len(PAGE)))
    for byte in PAGE:
        connection.sendall(bytes([byte]))
        time.sleep(0.02)  # every read well within the timeout, the whole body far beyond it


def test_a_body_that_drips_in_for_longer_than_the_timeout_fails_as_a_timeout():
    with raw_server(dripping) as url:
        started = time.monotonic()
        with pytest.raises(HttpError, match=r"ReadTimeout.*longer than 0.5 s in all"):
            session(url, timeout=0.5).get(f"{url}/items")
    assert time.monotonic() - started < 5  # the whole page would take ~30 s


def inflating(size: int) -> Callable[[socket.socket], None]:
    body = gzip.compress(b"[" + b" " * size + b"]", compresslevel=9)

    def answer(connection: socket.socket) -> None:
        connection.sendall(head(len(body), "Content-Encoding: gzip\r\n") + body)

    return answer


def test_a_gzip_body_that_inflates_beyond_the_limit_fails_naming_the_limit():
    with raw_server(inflating(3 * 1024 * 1024)) as url:  # 3 KB on the wire, 3 MiB inflated
        with pytest.raises(ResponseTooLargeError, match=r"/items answered a body larger than 1 MiB once decompressed"):
            session(url, max_response_mib=1).get(f"{url}/items")


def test_bodies_within_the_limits_are_read_whole_compressed_or_not():
    plain = lambda connection: connection.sendall(head(len(PAGE)) + PAGE)  # noqa: E731
    with raw_server(plain) as url:
        assert session(url, timeout=5, max_response_mib=1).get(f"{url}/items").json() == json.loads(PAGE)
    with raw_server(inflating(900 * 1024)) as url:
        assert session(url, timeout=5, max_response_mib=1).get(f"{url}/items").content.strip(b"[ ]") == b""


def dripping_headers(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    for byte in b"X-Slow: " + b"x" * 40 + b"\r\n":
        connection.sendall(bytes([byte]))
        time.sleep(0.05)  # every read well within the timeout, the headers (~2 s) beyond it
    connection.sendall(head(len(PAGE)).split(b"\r\n", 1)[1] + PAGE)


def test_headers_that_drip_in_for_longer_than_the_timeout_fail_as_a_timeout_once_they_end():
    """http.client reads them inside urllib3, each read bounded, not their sum: the deadline is checked as
    the body starts (a server dripping headers forever would hold the request: that needs a watchdog)."""
    with raw_server(dripping_headers) as url:
        with pytest.raises(HttpError, match=r"ReadTimeout"):
            session(url, timeout=0.5).get(f"{url}/items")
