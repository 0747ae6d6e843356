"""The mock's own OpenAPI 3.1 documents, generated from its operation declarations and pydantic models.

One builder serves both planes: ``/openapi.json`` (the partner API, same paths, operationIds, parameters and
schema names as the published document, with the status codes the mock really answers) and
``/_mock/openapi.json`` (the control plane). ``Documents`` builds each one when first asked for, not at start-up.

Response schemas are always open (no ``additionalProperties: false``), as Zest's are: a client generated from the
document must accept the fields Zest adds later. Request schemas are closed only where the mock refuses unknown
fields (``closed_requests``: the control plane, and the partner API under ``--strict-fields``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mock_server.http.operations import Answer, Operation

if TYPE_CHECKING:
    from pydantic import BaseModel

REF = "#/components/schemas/{model}"


class Documents(Mapping[str, dict[str, Any]]):
    """The documents by plane, each built by its builder on first access and kept (generating both was a sixth
    of the mock's start-up)."""

    def __init__(self, builders: Mapping[str, Callable[[], dict[str, Any]]]) -> None:
        self._builders = dict(builders)
        self._built: dict[str, dict[str, Any]] = {}

    def __getitem__(self, plane: str) -> dict[str, Any]:
        if plane not in self._built:
            self._built[plane] = self._builders[plane]()
        return self._built[plane]

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


def build_document(
    operations: Sequence[Operation], *, plane: str, title: str, version: str, description: str,
    extra_models: Iterable[type[BaseModel]] = (), closed_requests: bool = False,
) -> dict[str, Any]:
    chosen = [op for op in operations if op.plane == plane]
    models = _models(chosen, extra_models)
    schemas = _schemas(models)
    responses = [a.model.__name__ for op in chosen for a in op.answers.values() if a.model is not None]
    for name in _reachable(schemas, responses) if closed_requests else list(schemas):
        schemas[name] = _opened(schemas[name])
    paths: dict[str, dict[str, Any]] = {}
    for op in chosen:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if any(op.secured for op in chosen):
        document["components"]["securitySchemes"] = {"HTTPBearer": {"type": "http", "scheme": "bearer"}}
    return document


def _operation(op: Operation) -> dict[str, Any]:
    spec: dict[str, Any] = {"tags": [op.tag], "summary": op.summary, "operationId": op.operation_id}
    if op.description:
        spec["description"] = op.description
    if op.secured:
        spec["security"] = [{"HTTPBearer": []}]
    if op.parameters:
        spec["parameters"] = [
            {"name": p.name, "in": p.location, "required": p.required or p.location == "path", "schema": p.schema,
             **({"description": p.description} if p.description else {})}
            for p in op.parameters
        ]
    if op.body is not None:
        content: dict[str, Any] = {"schema": _ref(op.body.model)}
        if op.body.encoding:
            content["encoding"] = op.body.encoding
        spec["requestBody"] = {"required": True, "content": {op.body.media_type: content}}
    spec["responses"] = {str(status): _answer(answer, op.links.get(status)) for status, answer in op.answers.items()}
    return spec


def _answer(answer: Answer, links: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"description": answer.description}
    if answer.model is not None:
        spec["content"] = {answer.media_type: {"schema": _ref(answer.model)}}
    elif answer.media_type != "application/json":
        spec["content"] = {answer.media_type: {"schema": {"type": "string"}}}
    if answer.headers:
        spec["headers"] = answer.headers
    if links:
        spec["links"] = links
    return spec


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _models(operations: Sequence[Operation], extra: Iterable[type[BaseModel]]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {m.__name__: m for m in extra}
    for op in operations:
        if op.body is not None:
            found[op.body.model.__name__] = op.body.model
        for answer in op.answers.values():
            if answer.model is not None:
                found[answer.model.__name__] = answer.model
    return list(found.values())


def _schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    from pydantic.json_schema import models_json_schema  # documents are built on first request, not at start

    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    return {name: _tidy(schema) for name, schema in sorted(top.get("$defs", {}).items())}


def _reachable(schemas: dict[str, Any], roots: Iterable[str]) -> set[str]:
    """The schema names ``roots`` refer to, directly or through other schemas."""
    found: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in found or name not in schemas:
            continue
        found.add(name)
        todo += _refs(schemas[name])
    return found


def _refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [name for item in node for name in _refs(item)]
    if not isinstance(node, dict):
        return []
    own = [node["$ref"].rsplit("/", 1)[-1]] if isinstance(node.get("$ref"), str) else []
    return own + [name for value in node.values() for name in _refs(value)]


def _opened(node: Any) -> Any:
    """``node`` without any ``additionalProperties: false`` (free-form maps keep theirs)."""
    if isinstance(node, list):
        return [_opened(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {key: _opened(value) for key, value in node.items()
            if not (key == "additionalProperties" and value is False)}


def _tidy(node: Any) -> Any:
    """``X | None = None`` fields become plain optional ``X`` (the mock omits them rather than sending null)."""
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    nullable = isinstance(options, list) and len(options) == 2 and {"type": "null"} in options
    if nullable and node.get("default", 0) is None:
        (kept,) = [o for o in options if o != {"type": "null"}]
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
        return _tidy({**kept, **rest})
    return {key: _tidy(value) for key, value in node.items()}
