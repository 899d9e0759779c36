"""Credential scoping: where the requests of a source, which carry its credentials, may go.

Every request of a source carries its credentials, so requests (next-page
URLs and redirects included) may only go to the API host or a configured
token host; anything else is refused before it is sent. Credentials never
travel over plain `http://` to a host that is not a loopback address unless
the spec opts in (`client.allow_insecure_http`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rest_assets.errors import CredentialScopeError
from rest_assets.runtime.redaction import redact


@dataclass
class CredentialScope:
    """The hosts one source's requests may reach, and whether plain http is allowed."""

    source: str
    allowed_hosts: set[str] = field(default_factory=set)
    allow_insecure_http: bool = False
    sends_credentials: bool = True

    def __post_init__(self) -> None:
        self.allowed_hosts = {host.lower() for host in self.allowed_hosts}

    def check(self, url: str) -> None:
        """Raise CredentialScopeError unless a request to `url` may carry this source's credentials."""
        parts = urlsplit(url)
        if parts.netloc.lower() not in self.allowed_hosts:
            raise CredentialScopeError(
                f"source '{self.source}': refused a request to {redact(url)}: credentials are only sent to "
                f"{', '.join(sorted(self.allowed_hosts))} (a next-page URL or redirect pointed elsewhere)"
            )
        insecure = parts.scheme.lower() == "http" and not is_loopback_host(parts.hostname)
        if insecure and self.sends_credentials and not self.allow_insecure_http:
            raise CredentialScopeError(
                f"source '{self.source}': refused to send credentials over plain http:// to {parts.hostname} "
                f"({redact(url)}): use https://, or set client.allow_insecure_http: true in the spec"
            )


def is_loopback_host(host: str | None) -> bool:
    """Whether `host` (a hostname or IP literal) is this machine: localhost or a loopback address."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
