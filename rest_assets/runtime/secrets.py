"""Resolve `{secret: KEY}` values at run time through dlt's config providers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dlt

from rest_assets.dialect.model import SecretRef
from rest_assets.errors import MissingSecretError
from rest_assets.runtime.redaction import register_secret
from rest_assets.runtime.settings import resolve_settings_in


def secret_lookup_keys(source: str, key: str) -> list[str]:
    """Where a secret is looked up, most specific first."""
    return [f"sources.{source}.{key}", key]


def resolve_secret(source: str, key: str) -> str:
    """The value of secret `key` for `source`; raises MissingSecretError naming what to set."""
    for name in secret_lookup_keys(source, key):
        value: Any = dlt.secrets.get(name)
        if value is not None and str(value) != "":
            text = str(value)
            register_secret(text)
            return text
    env_name = f"SOURCES__{source.upper()}__{key.upper()}"
    raise MissingSecretError(
        f"source '{source}' needs the secret '{key}': set the environment variable {env_name} "
        f'(or {key.upper()}), or `{key} = "..."` under [sources.{source}] in .dlt/secrets.toml'
    )


def resolve_secrets(source: str, value: Any, escape: Callable[[str], str] | None = None) -> Any:
    """A copy of `value` with every SecretRef replaced by its resolved value, and every setting too.

    With `escape`, each resolved value is passed through it (where dlt formats the strings
    afterwards, a value's own braces must not read as placeholders).
    """
    if isinstance(value, SecretRef):
        resolved = resolve_secret(source, value.key)
        return escape(resolved) if escape else resolved
    if isinstance(value, dict):
        return {k: resolve_secrets(source, v, escape) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(source, v, escape) for v in value]
    return resolve_settings_in(source, value, escape)


def resolve_setting(source: str, key: str, default: Any) -> Any:
    """A plain (non-secret) override from `sources.<source>.<key>` (env or config.toml)."""
    value: Any = dlt.config.get(f"sources.{source}.{key}")
    return default if value in (None, "") else value


def secret_is_set(source: str, key: str) -> bool:
    """Whether secret `key` of `source` resolves; its value is neither returned, kept nor registered."""
    return any(_is_set(dlt.secrets.get(name)) for name in secret_lookup_keys(source, key))


def secret_env_names(source: str, key: str) -> list[str]:
    """The environment variables that set secret `key` of `source`, most specific first."""
    return [f"SOURCES__{source.upper()}__{key.upper()}", key.upper()]


def _is_set(value: Any) -> bool:
    return value is not None and str(value) != ""
