"""Read each response body within the request's timeout in all, and up to a size once decompressed.

requests applies its timeout to connecting and to each read from the socket:
a body that drips in a byte at a time never times out, and a small gzip body
that inflates to gigabytes is inflated whole into memory. :class:`BoundedBodyAdapter`
reads the body itself, one socket read (`read1`) at a time and decompressed
a bounded chunk at a time, and ends it as soon as the request has taken longer
than its timeout (requests' `ReadTimeout`, which the transport retries like any
timeout) or the body has grown beyond the limit (`ResponseTooLargeError`, not
retried: the same request would bring the same body). Errors while reading are
requests' own, as its own body reading raises them.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ContentDecodingError, ReadTimeout
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError
from urllib3.exceptions import SSLError as Urllib3SSLError

from rest_assets.errors import ResponseTooLargeError
from rest_assets.runtime.redaction import redact

DEFAULT_MAX_RESPONSE_MIB = 256
_CHUNK = 64 * 1024
_MIB = 1024 * 1024


class BoundedBodyAdapter(HTTPAdapter):
    """An HTTPAdapter that hands back responses with their body read, within bounds of time and size."""

    def __init__(self, max_body_bytes: int = DEFAULT_MAX_RESPONSE_MIB * _MIB, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_body_bytes = max_body_bytes

    def send(  # type: ignore[override]  # requests' own signature, its keyword arguments passed on as they are
        self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None, **kwargs: Any
    ) -> requests.Response:
        """Send `request`; unless streaming, read its body before handing the response on."""
        started = time.monotonic()
        response = super().send(request, stream=True, timeout=timeout, **kwargs)
        if stream or response.raw is None or response._content_consumed:  # streamed, or read already
            return response
        total = _total_seconds(timeout)
        response._content = self._read_body(response, None if total is None else started + total, total)
        response._content_consumed = True
        return response

    def _read_body(self, response: requests.Response, deadline: float | None, total: float | None) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := response.raw.read1(_CHUNK, decode_content=True):
                size += len(chunk)
                if size > self.max_body_bytes:
                    response.close()
                    raise ResponseTooLargeError(
                        f"{redact(response.url)} answered a body larger than {self.max_body_bytes / _MIB:g} MiB once "
                        "decompressed; raise client.max_response_mib if the API's pages are that large"
                    )
                if deadline is not None and time.monotonic() > deadline:
                    response.close()
                    raise ReadTimeout(f"the response took longer than {total:g} s in all (client.timeout)")
                chunks.append(chunk)
        except ProtocolError as exc:
            raise ChunkedEncodingError(exc) from None
        except DecodeError as exc:
            raise ContentDecodingError(exc) from None
        except ReadTimeoutError as exc:
            raise requests.exceptions.ConnectionError(exc) from None
        except Urllib3SSLError as exc:
            raise requests.exceptions.SSLError(exc) from None
        return b"".join(chunks)


def _total_seconds(timeout: Any) -> float | None:
    """The time a request may take in all: its timeout, or the sum of a (connect, read) pair."""
    if isinstance(timeout, (int, float)):
        return float(timeout)
    if isinstance(timeout, tuple):
        parts = [float(part) for part in timeout if isinstance(part, (int, float))]
        return sum(parts) if parts else None
    return None
