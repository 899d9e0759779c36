"""Can a run of a source start? What must be set first, named, never valued.

A run resolves the source's secrets, settings (`{config: KEY}`) and its base
and token URLs before it sends anything (see rest_assets.compile.source); one that cannot fails at once.
Whatever would start such runs on its own (the freshness sensor) asks here
first. Secrets are looked up through dlt's providers exactly as a run does
(runtime.secrets) but their values are neither kept nor shown. A base or
token URL on a reserved example domain (RFC 2606/6761: `example.com`,
`.example`, `.invalid`, `.test`, ...) is a placeholder no API answers, so it
counts as not set: a bundled spec is written against such a host until
`SOURCES__<SOURCE>__BASE_URL` points it at the real API.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from dlt.common.configuration.exceptions import ConfigProviderException

from rest_assets.dialect.model import SourceSpec
from rest_assets.errors import MissingSettingError
from rest_assets.runtime.redaction import redact
from rest_assets.runtime.secrets import resolve_setting, secret_env_names, secret_is_set
from rest_assets.runtime.settings import find_setting, resolve_settings_in

_PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org", "example", "invalid", "test")


def missing_to_run(spec: SourceSpec, resources: Collection[str] | None = None) -> list[str]:
    """What to set before a run of `spec` extracting `resources` (default: all) can start; [] when nothing.

    Each item names environment variables (and, for a URL, why the current one
    does not do); no item holds a secret's value.
    """
    selected = replace(spec, resources=spec.with_ancestors(resources)) if resources else spec
    try:
        return _missing(spec, selected)
    except ConfigProviderException as error:  # a malformed .dlt/secrets.toml or config.toml: every run would fail on it
        return [f"settings files that dlt can read ({' '.join(redact(error).split())})"]


def _missing(spec: SourceSpec, selected: SourceSpec) -> list[str]:
    missing = unset_values(selected)
    missing += _url_problems(spec.name, "base_url", spec.client.get("base_url"), "base URL")
    auth = spec.client.get("auth") or {}
    token_url = (auth.get("token_url") or auth.get("access_token_url")) if isinstance(auth, dict) else None
    if token_url:
        missing += _url_problems(spec.name, "token_url", token_url, "token URL")
    return missing


def unset_values(spec: SourceSpec) -> list[str]:
    """Every secret and setting of `spec` that is not set, named as where to set it; [] when none."""
    missing = [_hint(spec.name, key) for key in spec.secret_keys if not secret_is_set(spec.name, key)]
    missing += [_hint(spec.name, key) for key in spec.config_keys if find_setting(spec.name, key) is None]
    missing += [_hint(spec.name, key) for key in _implicit_credentials(spec) if not secret_is_set(spec.name, key)]
    return missing


def _implicit_credentials(spec: SourceSpec) -> list[str]:
    """OAuth2 client credentials a spec leaves out, which a run resolves as secrets (see runtime.auth)."""
    auths = [spec.client.get("auth"), *[r.endpoint.get("auth") for r in spec.resources]]
    keys: list[str] = []
    for auth in auths:
        if isinstance(auth, dict) and auth.get("type") in ("oauth2", "oauth2_client_credentials"):
            keys += [key for key in ("client_id", "client_secret") if key not in auth and key not in keys]
    return keys


def _hint(source: str, key: str) -> str:
    specific, plain = secret_env_names(source, key)
    return f"{specific} (or {plain})"


def _url_problems(source: str, key: str, configured: Any, label: str) -> list[str]:
    """[] when the URL a run would use is usable, else what to set (a secret URL is checked as a secret)."""
    env = f"SOURCES__{source.upper()}__{key.upper()}"
    override = resolve_setting(source, key, None)
    if override is not None:
        return [] if _usable_url(str(override)) else [f"{env} (its value is not an http(s) URL)"]
    try:
        url = resolve_settings_in(source, configured)  # settings are not secret: the value may be looked at
    except MissingSettingError:
        return []  # named with the settings
    if not isinstance(url, str):
        return []  # a {secret: ...}: checked with the secrets, never looked at
    if _usable_url(url):
        return []
    return [f"{env} (the spec's {label} {configured!r} is a placeholder)"]


def _usable_url(url: str) -> bool:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("http", "https") or not host:
        return False
    return not any(host == domain or host.endswith("." + domain) for domain in _PLACEHOLDER_DOMAINS)
