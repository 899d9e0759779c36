"""The one exception hierarchy of rest_assets.

Every error a user can cause (a bad spec, a missing secret, a bad response)
is a subclass of :class:`RestAssetsError`, so callers can catch one type and
show the message as is: messages are written for people and never carry a
secret value.
"""

from __future__ import annotations


class RestAssetsError(Exception):
    """Base of every error rest_assets raises on purpose."""


class SpecError(RestAssetsError):
    """A spec file is invalid: the message names file, line, resource and key.

    Attributes mirror the message so tools and tests can read them.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        resource: str | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.resource = resource
        self.key = key
        self.detail = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.file or "<spec>"
        if self.line:
            where += f":{self.line}"
        parts = [where]
        if self.resource:
            parts.append(f"resource '{self.resource}'")
        if self.key:
            parts.append(f"key '{self.key}'")
        return " - ".join(parts) + f": {self.detail}"


class StopConditionError(SpecError):
    """A `stop_condition` is outside the safe grammar."""


class MissingSecretError(RestAssetsError):
    """A `{secret: KEY}` could not be resolved at run time."""


class MissingSettingError(RestAssetsError):
    """A `{config: KEY}` / `{config.KEY}` setting could not be resolved at run time."""


class UnloadableRecordError(RestAssetsError):
    """A record that dlt cannot load at all (an integer beyond 64 bits, nesting beyond orjson's limit)."""


class LoadError(RestAssetsError):
    """Extracting or loading a resource failed; the message is secret-free."""


class HttpError(LoadError):
    """An HTTP request failed for good (after retries), naming resource and status."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class CredentialScopeError(LoadError):
    """A request carrying credentials would have gone to a host they do not belong to."""


class ResponseFormatError(LoadError):
    """A response body was not what the spec says it is (not JSON, selector missing, ...)."""


class ResponseTooLargeError(LoadError):
    """A response body beyond the size a source takes (`client.max_response_mib`), decompressed."""


class PaginationError(LoadError):
    """A paginator would loop forever or ran past its page cap."""
