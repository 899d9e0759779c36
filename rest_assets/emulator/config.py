"""Emulator configuration and the demo credentials."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

DEMO_CREDENTIALS: dict[str, dict[str, str]] = {
    "contact_book": {"api_key": "demo-contact-book-token"},
    "chat_analytics": {"api_key": "demo-chat-analytics-key"},
    "sales_crm": {"api_key": "demo-sales-crm-key", "organization_id": "demo-org-42"},
    "client_portal": {
        "client_id": "demo-portal-client",
        "client_secret": "demo-portal-secret",
        "refresh_token": "demo-portal-refresh",
        "account_id": "demo-account-7",
    },
    "help_desk": {
        "client_id": "demo-helpdesk-client",
        "client_secret": "demo-helpdesk-secret",
        "refresh_token": "demo-helpdesk-refresh",
    },
}

SOURCES = tuple(DEMO_CREDENTIALS)


@dataclass
class EmulatorConfig:
    """Settings of one emulator.

    ``sizes`` maps ``"<source>.<resource>"`` to the number of top-level
    records (else ``default_size``). ``latency_ms``, ``token_expiry_requests``
    and ``rotate_refresh_tokens`` may be changed while running
    (``Emulator.configure`` or ``POST /_admin/config``). ``page_cache_pages``
    bounds the encoded pages kept for repeated requests (emptied when full).
    """

    seed: int = 0
    default_size: int = 120
    sizes: dict[str, int] = field(default_factory=dict)
    credentials: dict[str, dict[str, str]] = field(default_factory=lambda: copy.deepcopy(DEMO_CREDENTIALS))
    latency_ms: float = 0
    token_expiry_requests: int | None = None
    rotate_refresh_tokens: bool = False
    page_cache_pages: int = 4096

    def runtime(self) -> dict[str, object]:
        """The runtime-adjustable settings as a dict."""
        return {
            "latency_ms": self.latency_ms,
            "token_expiry_requests": self.token_expiry_requests,
            "rotate_refresh_tokens": self.rotate_refresh_tokens,
        }
