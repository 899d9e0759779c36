"""Redact secret values by value, wherever they would be printed or stored.

dlt's URL sanitizer knows a fixed list of parameter names; a secret sent as
`?key=...` under any other name would leak. Here every secret resolved or
obtained at run time (spec secrets, access and refresh tokens, HTTP Basic
credentials) is registered, and text passing through :func:`redact` has each
value replaced by `***`, in every form it travels in: plain, URL-encoded
(`quote`, form-encoded `quote_plus`, either case of hex), JSON-escaped (any
character, at any depth: a JSON body echoed in a string field), base64 of the
value itself (an API echoing an encoded token), and
for HTTP Basic the base64 of `user:password` (see :func:`register_basic_credentials`).
In records (:func:`mask_in_value`) keys are masked too: a key becomes a column name. Forms
with a scheme (`Bearer <token>`, `Basic <base64>`) are covered by the value
itself and print as `Bearer ***`, keeping the scheme readable.

Short values: a value of at least `SUBSTRING_MIN_LENGTH` characters is masked
wherever it occurs, even inside a longer word. A shorter one (any length,
down to one character) is masked only where it stands as a whole token: not
preceded or followed by a letter, digit, `_` or `~`. So the password `pw1` is
masked in `?key=pw1&x=1`, `Authorization: pw1`, `"pw1"`, `pw1.` or `pw1-old`,
but a log line's `pw123` or `upw1` is left alone; masking every `a` inside
words would make logs unreadable without protecting anything.

Truncate only after redacting (:func:`redacted_excerpt`): a cut through a
secret would leave a prefix no longer recognisable as the secret.

Logging: :func:`install_log_redaction` installs a log record factory, so every
record created in the process, by any logger at any level (urllib3's child
loggers, requests, dlt, dagster), has its message and traceback text redacted
when it is created, before any handler or formatter sees it. A filter on a
parent logger would not do: Python applies logger filters only to records
logged on that very logger, not to those propagated from its children.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from base64 import b64encode, urlsafe_b64encode
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
SUBSTRING_MIN_LENGTH = 6
_TOKEN_CHARS = r"A-Za-z0-9_~"
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_long_cache: tuple[list[str], list[bytes], bool] | None = None


def _derived_forms(value: str) -> set[str]:
    """The forms a secret takes on the wire and in logs (URL-, form- and JSON-encoded; percent-encoding
    in upper- and lower-case hex, as .NET's UrlEncode writes it)."""
    encoded = {quote(value, safe=""), quote(value), quote_plus(value)}
    lower_hex = (_PERCENT_HEX.sub(lambda m: m.group(0).lower(), e) for e in encoded)
    return {value, json.dumps(value)[1:-1], *encoded, *lower_hex, *_base64_forms(value)}


def _base64_forms(value: str) -> set[str]:
    """The secret base64-encoded (standard and URL-safe, padded or not), as an API may echo a token: only
    for secrets of `SUBSTRING_MIN_LENGTH` characters or more (a short one's base64 is a common word)."""
    if len(value) < SUBSTRING_MIN_LENGTH:
        return set()
    raw = value.encode()
    forms = {b64encode(raw).decode(), urlsafe_b64encode(raw).decode()}
    return forms | {form.rstrip("=") for form in forms}


_PERCENT_HEX = re.compile(r"%[0-9A-F]{2}")


def register_secret(value: object) -> None:
    """Remember `value` (and its encoded forms) as something never to print or store."""
    if not isinstance(value, str) or not value:
        return
    _register(_derived_forms(value))


def register_basic_credentials(username: object, password: object) -> None:
    """Register HTTP Basic credentials: the password and the base64 `user:password` of the header (with an
    empty password too: an API key sent as the user name, `-u sk_live_...:`)."""
    register_secret(password)
    if username or password:
        token = b64encode(f"{username or ''}:{password or ''}".encode()).decode()
        register_secret(token)  # `Basic <token>` is then logged as `Basic ***`


def any_secret_registered() -> bool:
    """Whether any secret is registered (a cheap test before work that only finds secrets)."""
    return bool(_secrets)


def registered_secrets() -> frozenset[str]:
    """Every registered form, as of now (with `restore_registered_secrets`: isolation between tests)."""
    with _lock:
        return frozenset(_secrets)


def restore_registered_secrets(snapshot: frozenset[str]) -> None:
    """Forget every form registered since `snapshot` was taken."""
    global _pattern, _long_cache
    with _lock:
        if _secrets != snapshot:
            _secrets.intersection_update(snapshot)
            _pattern = _long_cache = None


def _register(forms: set[str]) -> None:
    global _pattern, _long_cache
    with _lock:
        if forms <= _secrets:
            return
        _secrets.update(forms)
        _pattern = _long_cache = None


def _compiled() -> re.Pattern[str] | None:
    """One alternation of every registered form, longest first (rebuilt after a registration)."""
    global _pattern
    with _lock:
        if _pattern is None and _secrets:
            alternatives = []
            for secret in sorted(_secrets, key=len, reverse=True):
                escaped = re.escape(secret)
                if len(secret) < SUBSTRING_MIN_LENGTH:
                    escaped = rf"(?<![{_TOKEN_CHARS}]){escaped}(?![{_TOKEN_CHARS}])"
                alternatives.append(escaped)
            _pattern = re.compile("|".join(alternatives))
        return _pattern


def redact(text: object) -> str:
    """`text` as a string with every registered secret (in any registered form) replaced by ***.

    Text holding JSON escapes (a body quoted in an error, a JSON document held in
    a string field) can spell a secret in forms no list covers (`\\/` for `/`,
    `\\u0053` for `S`, `\\\\\\/` once more escaped): those spellings are masked
    in place, so the text keeps its shape.
    """
    result = str(text)
    pattern = _compiled()
    if pattern is None:
        return result
    cleaned = pattern.sub(MASK, result)
    return _mask_escaped(cleaned, pattern) if "\\" in cleaned else cleaned


MAX_ESCAPE_DEPTH = 16  # levels of JSON escaping decoded: a JSON document in a string field of a page is two


def _mask_escaped(text: str, pattern: re.Pattern[str]) -> str:
    """`text` with every registered form that its JSON escapes spell, decoded one level after another, masked
    where it stands in `text` (the text keeps its shape: a JSON document held in a string stays one).

    Linear in the text's length per level: each level is decoded once, with the span of `text` each decoded
    character comes from, and searched with the plain pattern.
    """
    spans: list[tuple[int, int]] = []
    level, starts, ends = text, list(range(len(text))), list(range(1, len(text) + 1))
    for _ in range(MAX_ESCAPE_DEPTH):
        decoded = _decoded_with_spans(level)
        if decoded is None:
            break
        level, level_starts, level_ends = decoded
        starts, ends = [starts[i] for i in level_starts], [ends[i - 1] for i in level_ends]
        spans.extend((starts[m.start()], ends[m.end() - 1]) for m in pattern.finditer(level) if m.end() > m.start())
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:  # overlapping or touching: one mask
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    masked, position = [], 0
    for start, end in merged:
        masked += [text[position:start], MASK]
        position = end
    masked.append(text[position:])
    return "".join(masked)


def _decoded_with_spans(text: str) -> tuple[str, list[int], list[int]] | None:
    """`text` with one level of JSON escapes decoded, and the span of `text` each decoded character comes
    from (as starts and ends); None when nothing in it decodes."""
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    position = 0
    for match in _JSON_ESCAPE.finditer(text):
        if match.start() > position:
            pieces.append(text[position : match.start()])
            starts.extend(range(position, match.start()))
            ends.extend(range(position + 1, match.start() + 1))
        code = match.group(1)
        pieces.append(chr(int(code, 16)) if code is not None else _SIMPLE_ESCAPES.get(match.group(2), match.group(2)))
        starts.append(match.start())
        ends.append(match.end())
        position = match.end()
    if not pieces:
        return None
    pieces.append(text[position:])
    starts.extend(range(position, len(text)))
    ends.extend(range(position + 1, len(text) + 1))
    return "".join(pieces), starts, ends


_JSON_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|([\\"/bfnrt]))')
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def unescape_json_text(text: str) -> str:
    """`text` with JSON string escapes decoded (surrogate pairs joined; anything else left as it is)."""

    def decode(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return chr(int(match.group(1), 16))
        char = match.group(2)
        return _SIMPLE_ESCAPES.get(char, char)

    decoded = _JSON_ESCAPE.sub(decode, text)
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def contains_secret(data: str | bytes) -> bool:
    """Whether `data` (text, or UTF-8 bytes) holds any registered secret: a cheap test before walking records.

    Plain substring tests (C speed) for the long forms; a regex only for the short ones. Data holding
    backslashes is searched again with its JSON escapes decoded, level after level (a JSON document
    in a string field of a page is escaped twice).
    """
    if _holds_a_form(data):
        return True
    if isinstance(data, bytes) and b"\\" in data:
        data = data.decode("utf-8", "replace")
    if not isinstance(data, str) or "\\" not in data:
        return False
    for _ in range(MAX_ESCAPE_DEPTH):  # a JSON document in a string field of a page is escaped twice, and so on
        decoded = unescape_json_text(data)
        if decoded == data:
            return False
        if _holds_a_form(decoded):
            return True
        data = decoded
    return False


def _holds_a_form(data: str | bytes) -> bool:
    long_text, long_bytes, has_short = _long_forms()
    if isinstance(data, bytes):
        if any(form in data for form in long_bytes):
            return True
        data = data.decode("utf-8", "replace") if has_short else ""
    elif any(form in data for form in long_text):
        return True
    pattern = _compiled() if has_short else None
    return pattern is not None and pattern.search(data) is not None


def _long_forms() -> tuple[list[str], list[bytes], bool]:
    """The forms masked anywhere (as text and UTF-8), and whether shorter ones exist (cached per registry)."""
    global _long_cache
    with _lock:
        if _long_cache is None:
            text = [s for s in _secrets if len(s) >= SUBSTRING_MIN_LENGTH]
            _long_cache = (text, [s.encode() for s in text], len(text) != len(_secrets))
        return _long_cache


def redacted_excerpt(text: object, limit: int) -> str:
    """The first `limit` characters of `text` after redaction (never cut a secret before masking it)."""
    cleaned = redact(text)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."


def mask_in_value(value: Any) -> tuple[Any, int]:
    """`value` (a record, list or scalar) with secrets in its strings masked, and how many strings changed."""
    if isinstance(value, str):
        cleaned = redact(value)
        return cleaned, int(cleaned != value)
    if isinstance(value, dict):
        count = 0
        for key, item in list(value.items()):
            value[key], changed = mask_in_value(item)
            count += changed
            masked_key = redact(key) if isinstance(key, str) else key
            if masked_key != key:  # a key would become a column name: `{"<token>": "active"}`
                value[masked_key] = value.pop(key)
                count += 1
        return value, count
    if isinstance(value, list):
        count = 0
        for index, item in enumerate(value):
            value[index], changed = mask_in_value(item)
            count += changed
        return value, count
    return value, 0


def _redact_record(record: logging.LogRecord) -> None:
    """Replace the record's message (and any traceback text) with redacted text, once formatted."""
    if not _secrets:
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is logging's problem to report, not ours
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class _RedactingFactory:
    """A log record factory that redacts every record it makes (wraps the previous factory)."""

    def __init__(self, wrapped: Callable[..., logging.LogRecord]) -> None:
        self.wrapped = wrapped

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.wrapped(*args, **kwargs)
        _redact_record(record)
        return record


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record (for handlers that receive records made elsewhere)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


_FILTER = RedactingFilter()
_LOGGERS = ("", "dlt", "rest_assets", "urllib3", "requests", "dagster")


def install_log_redaction() -> None:
    """Redact every log record of the process at creation, plus filters on the known handlers."""
    with _lock:
        if not isinstance(logging.getLogRecordFactory(), _RedactingFactory):
            logging.setLogRecordFactory(_RedactingFactory(logging.getLogRecordFactory()))
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
