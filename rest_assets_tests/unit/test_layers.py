"""The picture of the house: which room of rest_assets may import which, checked against the code.

Data flows one way (spec → compile → dlt → Dagster): a room imports only the
rooms listed for it. README's "Layers" block is rendered from the same table
by `render_layers()`, so the picture cannot drift from the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rest_assets"
# room -> (the rooms of rest_assets it may import, what it is)
ALLOWED: dict[str, tuple[tuple[str, ...], str]] = {
    "definitions": (("orchestration",), "the code location's entry point: `defs`"),
    "orchestration": (
        ("compile", "dialect", "runtime", "warehouse", "dlt_internals", "errors"),
        "Dagster: assets, checks, schedules, sensors, a run's execution",
    ),
    "compile": (("dialect", "runtime", "dlt_internals", "errors"), "a spec into a working dlt rest_api source"),
    "runtime": (("dialect", "dlt_internals", "errors"), "HTTP transport, auth, paginators, redaction, Arrow batches, fan-out"),
    "warehouse": (("dlt_internals", "errors"), "the dlt destination and the one-transaction load"),
    "dialect": (("dlt_internals", "errors"), "YAML spec → validated SourceSpec"),
    "dlt_internals": ((), "every private dlt behaviour, behind one door"),
    "errors": ((), "the one exception hierarchy"),
    "cli": (("definitions", "dialect", "warehouse", "emulator", "errors"), "`rest-assets` demo, selftest, list"),
    "emulator": ((), "the local API emulator: imports nothing of the rest"),
}
# Rooms that must never import Dagster (the spec and compile layers, and what they build on).
WITHOUT_DAGSTER = ("dialect", "compile", "runtime", "warehouse", "dlt_internals", "errors", "emulator")


def render_layers() -> str:
    """The README's picture: one line per room, what it holds and what it may import."""
    width = max(len(room) for room in ALLOWED)
    lines = []
    for room, (imports, what) in ALLOWED.items():
        target = ", ".join(imports) if imports else "nothing of rest_assets"
        lines.append(f"{room:<{width}}  ──▶ {target}\n{'':<{width}}      {what}")
    return "\n".join(lines)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "rest_assets"


def _imports() -> dict[str, set[tuple[str, str]]]:
    """room -> {(imported module, importing file)} for every import in the package."""
    found: dict[str, set[tuple[str, str]]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            found.setdefault(_room(module), set()).update((name, str(path.relative_to(ROOT))) for name in names)
    return found


def test_every_room_imports_only_the_rooms_it_may():
    wrong = []
    for room, imports in _imports().items():
        if room == "rest_assets":
            continue
        allowed = {room, *ALLOWED[room][0]}
        wrong += [
            f"{where} imports {name}" for name, where in imports if name.startswith("rest_assets.") and _room(name) not in allowed
        ]
    assert wrong == []


def test_every_room_of_the_package_is_in_the_picture():
    rooms = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }
    assert rooms == set(ALLOWED)


def test_the_spec_and_compile_layers_never_import_dagster():
    imports = _imports()
    wrong = [
        f"{where} imports {name}"
        for room in WITHOUT_DAGSTER
        for name, where in imports.get(room, set())
        if name.split(".")[0] in ("dagster", "dagster_dlt")
    ]
    assert wrong == []


def test_the_readme_shows_this_picture():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"```\n{render_layers()}\n```" in readme, "README's Layers block differs: paste render_layers() output"


def test_the_readme_layout_names_every_module_of_every_room():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout") :]
    layout = layout[: layout.index("```", layout.index("```") + 3)]
    missing = [
        f"{room.name}/{module.stem}"
        for room in sorted(PACKAGE.iterdir())
        if (room / "__init__.py").exists() and room.name != "emulator"
        for module in sorted(room.glob("*.py"))
        if not module.stem.startswith("_") and module.stem not in layout
    ]
    rooms = [room.name for room in PACKAGE.iterdir() if (room / "__init__.py").exists() and f"{room.name}/" not in layout]
    assert missing == [] and rooms == []
