"""A page's JSON body is decoded once, fast where that is safe, and always to what requests decodes."""

import json
import re

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from rest_assets.errors import UnloadableRecordError
from rest_assets.runtime.responses import _has_long_digit_run, json_body_once, response_validator

# what a JSON API may send: every JSON type, integers beyond 64 bits, any unicode, nesting
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


def response(body: bytes, content_type: str = "application/json") -> requests.Response:
    made = requests.Response()
    made._content, made.status_code = body, 200
    made.headers["Content-Type"] = content_type
    made.encoding = requests.utils.get_encoding_from_headers(made.headers)
    return made


def requests_decodes(body: bytes, content_type: str = "application/json") -> object:
    return requests.Response.json(response(body, content_type))


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, ascii_only=st.booleans())
def test_any_json_body_decodes_to_what_requests_decodes(value, ascii_only):
    body = json.dumps({"data": value}, ensure_ascii=ascii_only).encode()
    assert repr(json_body_once(response(body))) == repr(requests_decodes(body))


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"a": 18446744073709551616}', "application/json"),  # 2**64: a float in orjson
        (b'{"a": -9223372036854775809}', "application/json"),  # -2**63 - 1: a float in orjson
        (b'{"a": 1e400}', "application/json"),  # infinity: orjson refuses it
        (b'{"a": "\\ud800"}', "application/json"),  # a lone surrogate: orjson refuses it
        (b'\xef\xbb\xbf{"a": 1}', "application/json"),  # a UTF-8 byte order mark
        ('{"a": "é"}'.encode("utf-16"), "application/json"),
        ('{"a": "é"}'.encode(), "text/plain"),  # no charset on text/*: requests reads ISO-8859-1
        ('{"a": "é"}'.encode("latin-1"), "application/json; charset=latin-1"),
    ],
)
def test_bodies_the_fast_decoder_would_read_differently_decode_as_requests_decodes_them(body, content_type):
    assert outcome(json_body_once, response(body, content_type)) == outcome(requests.Response.json, response(body, content_type))


def outcome(decode: object, page: requests.Response) -> str:
    """The decoded value, or the error raised, as text."""
    try:
        return repr(decode(page))  # type: ignore[operator]
    except ValueError as error:
        return f"{type(error).__name__}: {error}"


def test_the_body_is_decoded_once():
    page = response(b'{"data": [{"id": 1}]}')
    first = json_body_once(page)
    assert page.json() is first


@settings(max_examples=500, deadline=None)
@given(
    runs=st.lists(
        st.tuples(st.integers(0, 25), st.sampled_from([b"a", b"-", b'"', b" ", b".", b"\x00", b"\xc3\xa9"])), max_size=6
    )
)
def test_the_long_number_check_finds_exactly_the_runs_of_nineteen_digits_or_a_nul(runs):
    body = b"".join(b"1234567890"[: n % 10].ljust(n, b"7") + separator for n, separator in runs)
    # the translate-and-search check against the plain regex it replaces (a NUL only sends a page to requests)
    expected = re.search(rb"\d{19}", body.replace(b"\x00", b"0")) is not None
    assert _has_long_digit_run(body) is expected


@pytest.mark.parametrize(
    ("page", "field"),
    [
        ({"data": [{"id": 1, "h": 2**64 * 5}]}, "h"),
        ({"data": [{"id": 1}, {"id": 2, "meta": {"deep": [1, -(2**63) - 1]}}]}, "meta"),
    ],
)
def test_an_integer_beyond_64_bits_in_a_record_fails_naming_resource_and_field(page, field):
    """On every destination: dlt's JSON writer fails on it in normalize, naming neither."""
    validate = response_validator("src", "items", "data")
    with pytest.raises(UnloadableRecordError, match=rf"resource 'items': field '{field}' holds the integer -?\d{{19,}}"):
        validate(response(json.dumps(page).encode()))


def test_long_digit_runs_that_are_no_integer_in_a_record_load():
    page = {"data": [{"id": 1, "phone": "12345678901234567890", "ratio": 12345678901234567890.5}], "total": 2**70}
    validate = response_validator("src", "items", "data")
    made = response(json.dumps(page).encode())
    validate(made)
    assert made.json()["data"][0]["phone"] == "12345678901234567890"
