"""YAML documents that remember where each part came from, for errors as ``file:line: field.path: message``.

``read_yaml`` parses one document and records the line of every mapping key and list item by its path (a tuple of
keys and indexes, the same shape as a pydantic error's ``loc``), plus the keys given twice in one mapping, which
PyYAML would otherwise silently collapse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem of a document: ``file:line: field: message``."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class LinedDocument:
    data: Any
    lines: dict[Loc, int]
    duplicates: list[Loc]


def read_yaml(text: str) -> LinedDocument:
    """The single document of ``text`` with the line of each part; raises ``yaml.YAMLError``."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return LinedDocument(None, {}, [])
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {(): node.start_mark.line + 1}
    duplicates: list[Loc] = []
    _walk(node, (), lines, duplicates)
    return LinedDocument(data, lines, duplicates)


def syntax_issue(source: str, exc: yaml.YAMLError) -> Issue:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = ": ".join(filter(None, [getattr(exc, "context", None), getattr(exc, "problem", None)])) or str(exc)
    return Issue(source, mark.line + 1 if mark is not None else 1, "(yaml)", f"invalid YAML: {problem}")


def line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of the deepest part of ``loc`` the document has (a missing key points at its parent)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def field_path(loc: Loc) -> str:
    """``faults[0].match.operationId`` for ``("faults", 0, "match", "operationId")``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(document)"


def shown(path: Path) -> str:
    """A path as errors show it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], duplicates: list[Loc]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = (*loc, str(key_node.value))
            if key[-1] in seen:
                duplicates.append(key)
            seen.add(str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            _walk(value_node, key, lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            _walk(item, (*loc, index), lines, duplicates)
