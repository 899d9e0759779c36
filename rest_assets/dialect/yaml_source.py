"""Safe YAML parsing that remembers where every value came from.

PyYAML's SafeLoader refuses tags that construct Python objects; on top of it
we keep a map from each value's path (a tuple of keys and indexes) to its
line, and refuse duplicate mapping keys, which PyYAML would silently drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from rest_assets.errors import SpecError

Path = tuple[str | int, ...]
# libyaml's loader when installed (several times faster); both refuse object tags.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class YamlDocument:
    """Parsed YAML data plus the line of every value."""

    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse one YAML document safely, raising SpecError with file and line."""
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError("the file is empty; expected a mapping with 'client' and 'resources'", file=file)
        lines: dict[Path, int] = {}
        _collect_lines(node, (), lines, file)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        if isinstance(exc, yaml.constructor.ConstructorError):
            problem = f"{problem} (only plain YAML values are allowed; tags that construct objects are refused)"
        raise SpecError(f"invalid YAML: {problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()
    return YamlDocument(file=file, data=data, lines=lines)


def _collect_lines(node: yaml.Node, path: Path, lines: dict[Path, int], file: str, resource: str | None = None) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        if len(path) == 2 and path[0] == "resources":
            resource = _resource_name(node)
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark)
            if key in seen:
                dotted = (*path, key)[2:] if resource is not None else (*path, key)
                raise SpecError(
                    f"duplicate key '{key}'",
                    file=file,
                    line=key_node.start_mark.line + 1,
                    resource=resource,
                    key=".".join(str(p) for p in dotted),
                )
            seen.add(key)
            _collect_lines(value_node, (*path, key), lines, file, resource)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, (*path, index), lines, file, resource)


def _resource_name(node: yaml.MappingNode) -> str | None:
    """The `name` of a resource mapping node, so errors inside it can name the resource."""
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "name" and isinstance(value_node, yaml.ScalarNode):
            return str(value_node.value)
    return None
