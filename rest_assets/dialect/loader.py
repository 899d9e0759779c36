"""Find spec files and load them into SourceSpecs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rest_assets.dialect.model import SourceSpec
from rest_assets.dialect.validate import build_source_spec
from rest_assets.dialect.yaml_source import YamlDocument, parse_yaml
from rest_assets.errors import SpecError

SOURCES_DIR_ENV = "REST_ASSETS_SOURCES_DIR"
BUNDLED_SOURCES_DIR = Path(__file__).resolve().parent.parent / "sources"


def spec_dirs_from_env(environ: dict[str, str] | None = None) -> list[Path]:
    """The spec folders: `REST_ASSETS_SOURCES_DIR` (os.pathsep-separated) or the bundled one."""
    value = (environ if environ is not None else os.environ).get(SOURCES_DIR_ENV, "").strip()
    if not value:
        return [BUNDLED_SOURCES_DIR]
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def load_spec_file(path: Path) -> SourceSpec:
    """Parse and validate one spec file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the file: {exc.__class__.__name__}", file=str(path)) from None
    try:
        return build_source_spec(parse_yaml(text, str(path)), default_name=path.stem)
    except RecursionError:  # a YAML alias that holds itself (`&e {a: *e}`), or nesting beyond any API's
        raise SpecError("the spec nests too deeply (an alias that refers to itself?)", file=str(path)) from None


def spec_from_dict(config: dict[str, Any], name: str, origin: str = "<python>") -> SourceSpec:
    """A SourceSpec from a spec written as a Python mapping (the YAML's dict one-to-one).

    The entry point for specs built in code: values YAML cannot hold, such as
    dlt's `processing_steps` callables, are accepted as they are.
    """
    return build_source_spec(YamlDocument(file=origin, data=config), default_name=name)


def load_spec_dirs(dirs: list[Path]) -> list[SourceSpec]:
    """Load every `*.yaml`/`*.yml` file in `dirs` (not hidden ones), sorted; source names must be unique.

    When specs are invalid, the first one's error is raised, naming the others too.
    """
    specs: list[SourceSpec] = []
    errors: list[SpecError] = []
    seen: set[Path] = set()
    for directory in dirs:
        if not directory.is_dir():
            raise SpecError(f"spec folder does not exist (set {SOURCES_DIR_ENV} to existing folders)", file=str(directory))
        if directory.resolve() in seen:  # the same folder named twice is read once
            continue
        seen.add(directory.resolve())
        files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
        # hidden files are editors' (`.#shop.yaml`, an Emacs lock) or tools', never a user's spec
        for path in (path for path in files if not path.name.startswith(".")):
            try:
                specs.append(load_spec_file(path))
            except SpecError as exc:  # the other files are still read: every invalid spec is named at once
                errors.append(exc)
    if errors:
        raise _with_the_others(errors)
    by_name: dict[str, SourceSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise SpecError(
                f"source name '{spec.name}' is also used by {by_name[spec.name].file}; names must be unique",
                file=spec.file,
                key="name",
            )
        by_name[spec.name] = spec
    return specs


def _with_the_others(errors: list[SpecError]) -> SpecError:
    """The first error, its message followed by the other invalid specs' (its file, line and key kept)."""
    first = errors[0]
    if len(errors) > 1:
        others = "\n".join(f"  {error}" for error in errors[1:])
        first.args = (f"{first}\n{len(errors) - 1} more invalid spec(s):\n{others}",)
    return first
