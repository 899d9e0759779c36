"""Static description of the emulated resources and their fields.

``SPECS[source][resource]`` describes how each resource is generated;
``FIELDS[source][resource]`` documents the JSON field name -> type of the
records the emulator serves (``"text (nullable)"`` marks nullable fields,
``"json"`` marks nested objects and ``"text list"`` lists of strings, which dlt
loads into a child table ``<resource>__<field>``, see ``child_tables``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BASE_EPOCH = 1767225600  # 2026-01-01T00:00:00Z
YEAR_SECONDS = 365 * 24 * 3600

FIRST = [
    "Ada",
    "Ben",
    "Cleo",
    "Dan",
    "Eva",
    "Finn",
    "Gia",
    "Hugo",
    "Iris",
    "Jon",
    "Kai",
    "Lena",
    "Milo",
    "Nora",
    "Omar",
    "Pia",
    "Quin",
    "Rosa",
    "Sam",
    "Tara",
]
LAST = [
    "Adams",
    "Brown",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jones",
    "Khan",
    "Lopez",
    "Meyer",
    "Novak",
    "Olsen",
    "Patel",
]
WORDS = [
    "alpha",
    "bravo",
    "cedar",
    "delta",
    "ember",
    "falcon",
    "granite",
    "harbor",
    "indigo",
    "juniper",
    "kestrel",
    "lumen",
    "meadow",
    "nimbus",
    "orbit",
    "prism",
]
CITIES = [
    ("Berlin", "DE"),
    ("Lisbon", "PT"),
    ("Austin", "US"),
    ("Osaka", "JP"),
    ("Lyon", "FR"),
    ("Oslo", "NO"),
    ("Quito", "EC"),
    ("Perth", "AU"),
]
CHOICES = {
    "color": ["red", "green", "blue", "amber", "teal", "violet"],
    "status": ["open", "pending", "closed"],
    "stage": ["lead", "qualified", "proposal", "won", "lost"],
    "role": ["admin", "agent", "viewer"],
    "part_type": ["comment", "note", "assignment", "close"],
    "field_type": ["text", "number", "dropdown", "date"],
    "folder_type": ["inbox", "assigned", "closed", "spam"],
}

Gen = Callable[[random.Random, int, str], Any]


def pick(rng: random.Random, options: list[Any]) -> Any:
    """Fast deterministic ``rng.choice`` (one ``random()`` call)."""
    return options[int(rng.random() * len(options))]


def between(rng: random.Random, low: int, high: int) -> int:
    """Fast deterministic ``rng.randint(low, high)``."""
    return low + int(rng.random() * (high - low + 1))


def _optional_text(rng: random.Random, rid: int, name: str) -> str | None:
    return None if rng.random() < 0.3 else f"{pick(rng, WORDS)} {pick(rng, WORDS)}"


def _address(rng: random.Random, rid: int, name: str) -> dict[str, Any]:
    city, country = pick(rng, CITIES)
    return {"city": city, "country": country, "postal_code": f"{between(rng, 10000, 99999)}"}


def _tags(rng: random.Random, rid: int, name: str) -> list[str]:
    return rng.sample(WORDS, between(rng, 0, 3))  # empty lists too: dlt makes no child row of them


def _choice(kind: str) -> Gen:
    options = CHOICES[kind]
    return lambda rng, rid, name: pick(rng, options)


GENERATORS: dict[str, tuple[str, Gen]] = {
    "email": ("text", lambda rng, rid, name: f"{name.lower().replace(' ', '.')}.{rid}@example.com"),
    "domain": ("text", lambda rng, rid, name: f"{pick(rng, WORDS)}{rid}.example.com"),
    "url": ("text", lambda rng, rid, name: f"https://example.com/{pick(rng, WORDS)}/{rid}"),
    "subject": ("text", lambda rng, rid, name: f"{pick(rng, WORDS).title()} {pick(rng, WORDS)}"),
    "flag": ("boolean", lambda rng, rid, name: rng.random() < 0.5),
    "count": ("bigint", lambda rng, rid, name: between(rng, 0, 500)),
    "amount": ("double", lambda rng, rid, name: round(rng.uniform(0, 10000), 2)),
    "optional_text": ("text (nullable)", _optional_text),
    "address": ("json", _address),
    "tags": ("text list", _tags),
    **{kind: ("text", _choice(kind)) for kind in CHOICES},
}


@dataclass(frozen=True)
class ResourceSpec:
    """How one resource is generated.

    ``parent`` names the parent resource (same source) for child resources;
    ``ref`` names a resource whose records are listed under each parent
    (help_desk team_members are users); ``singleton`` means exactly one record.
    """

    source: str
    name: str
    extras: dict[str, str] = field(default_factory=dict)
    parent: str | None = None
    ref: str | None = None
    singleton: bool = False

    @property
    def key(self) -> str:
        """The ``"<source>.<resource>"`` key used in ``EmulatorConfig.sizes``."""
        return f"{self.source}.{self.name}"


def _specs(source: str, table: dict[str, dict[str, Any]]) -> dict[str, ResourceSpec]:
    return {name: ResourceSpec(source=source, name=name, **kw) for name, kw in table.items()}


SPECS: dict[str, dict[str, ResourceSpec]] = {
    "contact_book": _specs(
        "contact_book",
        {
            "contact_books": {"extras": {"description": "optional_text", "contact_count": "count"}},
            "contacts": {"extras": {"email": "email", "address": "address", "tags": "tags"}},
            "contact_groups": {"extras": {"member_count": "count"}},
            "users": {"extras": {"email": "email", "active": "flag"}},
            "teams": {"extras": {"member_count": "count"}},
            "shared_labels": {"extras": {"color": "color"}},
            "organizations": {"extras": {"domain": "domain", "address": "address"}},
            "conversations": {"extras": {"status": "status", "message_count": "count"}},
        },
    ),
    "chat_analytics": _specs(
        "chat_analytics",
        {
            "conversations": {"extras": {"status": "status", "subject": "subject"}},
            "contacts": {"extras": {"email": "email", "location": "address"}},
            "conversation_parts": {"extras": {"part_type": "part_type", "body": "optional_text"}},
            "teams": {"extras": {"member_count": "count"}},
            "companies": {"extras": {"domain": "domain", "monthly_spend": "amount"}},
        },
    ),
    "sales_crm": _specs(
        "sales_crm",
        {
            "tags": {"extras": {"color": "color"}},
            "deals": {"extras": {"value": "amount", "stage": "stage"}},
            "pages": {"extras": {"url": "url"}},
            "tasks": {"extras": {"done": "flag", "note": "optional_text"}},
            "users": {"extras": {"email": "email", "role": "role"}},
        },
    ),
    "client_portal": _specs(
        "client_portal",
        {
            "clients": {"extras": {"email": "email", "balance": "amount"}},
            "contacts": {"extras": {"email": "email", "address": "address"}},
            "company": {"extras": {"domain": "domain"}, "singleton": True},
        },
    ),
    "help_desk": _specs(
        "help_desk",
        {
            "conversations": {"extras": {"status": "status", "subject": "subject"}},
            "conversation_threads": {"extras": {"thread_type": "part_type", "body": "optional_text"}, "parent": "conversations"},
            "customers": {"extras": {"email": "email", "address": "address"}},
            "inboxes": {"extras": {"email": "email"}},
            "inbox_custom_fields": {"extras": {"field_type": "field_type", "required": "flag"}, "parent": "inboxes"},
            "inbox_folders": {"extras": {"folder_type": "folder_type", "total_count": "count"}, "parent": "inboxes"},
            "users": {"extras": {"email": "email", "role": "role"}},
            "workflows": {"extras": {"status": "status", "order": "count"}},
            "tags": {"extras": {"color": "color", "ticket_count": "count"}},
            "teams": {"extras": {"member_count": "count"}},
            "team_members": {"parent": "teams", "ref": "users"},
        },
    ),
}

BASE_FIELDS = {"id": "bigint", "name": "text", "created_at": "timestamp", "updated_at": "timestamp"}


def _fields(spec: ResourceSpec) -> dict[str, str]:
    if spec.ref:
        return _fields(SPECS[spec.source][spec.ref])
    return {**BASE_FIELDS, **{k: GENERATORS[kind][0] for k, kind in spec.extras.items()}}


FIELDS: dict[str, dict[str, dict[str, str]]] = {
    source: {name: _fields(spec) for name, spec in specs.items()} for source, specs in SPECS.items()
}


def child_tables(source: str) -> set[str]:
    """The child tables dlt makes of the list fields of ``source``'s resources: ``<resource>__<field>``."""
    return {
        f"{resource}__{name}"
        for resource, fields in FIELDS[source].items()
        for name, kind in fields.items()
        if kind == "text list"
    }


def make_name(rng: random.Random) -> str:
    """Return a deterministic human-looking name drawn from ``rng``."""
    return f"{pick(rng, FIRST)} {pick(rng, LAST)}"


def fill_extras(spec: ResourceSpec, record: dict[str, Any], rng: random.Random) -> None:
    """(Re)generate the resource-specific fields of ``record`` in place."""
    rid, name = record["id"], record["name"]
    for key, kind in spec.extras.items():
        record[key] = GENERATORS[kind][1](rng, rid, name)
