"""Resolve non-secret settings (`{config: KEY}`, `{config.KEY}` in a string) at run time.

A setting is looked up like a secret, through dlt's config providers
(`SOURCES__<SOURCE>__<KEY>` / `<KEY>` in the environment, `[sources.<source>]`
in `.dlt/config.toml`), but it is not a secret: it is never redacted, so it
can be shown in errors and URLs (a subdomain, an account id, a region).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dlt

from rest_assets.dialect.model import CONFIG_TEMPLATE, ConfigRef
from rest_assets.errors import MissingSettingError


def setting_lookup_keys(source: str, key: str) -> list[str]:
    """Where a setting is looked up, most specific first."""
    return [f"sources.{source}.{key}", key]


def find_setting(source: str, key: str) -> Any | None:
    """The value of setting `key` for `source`, or None where none is set."""
    for name in setting_lookup_keys(source, key):
        value: Any = dlt.config.get(name)
        if value is not None and str(value) != "":
            return value
    return None


def resolve_setting_value(source: str, key: str) -> Any:
    """The value of setting `key`; raises MissingSettingError naming what to set."""
    value = find_setting(source, key)
    if value is None:
        raise MissingSettingError(
            f"source '{source}' needs the setting '{key}': set the environment variable "
            f'SOURCES__{source.upper()}__{key.upper()} (or {key.upper()}), or `{key} = "..."` under '
            f"[sources.{source}] in .dlt/config.toml"
        )
    return value


def resolve_settings_in(source: str, value: Any, escape: Callable[[str], str] | None = None) -> Any:
    """`value` (one leaf) with a ConfigRef replaced by its setting and `{config.KEY}` filled in a string;
    with `escape`, each setting's value is passed through it (a whole-value setting only if a string)."""
    if isinstance(value, ConfigRef):
        setting = resolve_setting_value(source, value.key)
        return escape(setting) if escape and isinstance(setting, str) else setting
    if isinstance(value, str) and "{config." in value:
        fill = escape or str
        return CONFIG_TEMPLATE.sub(lambda match: fill(str(resolve_setting_value(source, match.group(1)))), value)
    return value
