"""The contract registry: versioned templates, attribute catalogs, primitives and samples, the validation of
SPV-request ``attributes`` driven by a template's data, and the share classes an approval materialises.

Data layout under ``mock_server/data/contracts`` (a new version or template is new files, never new code)::

    <version>/templates/<id>.json       a template; its ``id`` and ``version`` repeat the path
    <version>/catalogs/<name>.json      an attribute catalog (documentation, served verbatim)
    <version>/primitives/<name>.json    a named type that templates refer to
    <version>/samples/<name>.json       a valid create-SPV-request body

Template vocabulary (a small JSON-Schema dialect):

- template: ``id``, ``version``, ``title``, ``description``, ``attributes`` (name -> spec), ``serverSupplied``
  (names the partner may not send: ``server_supplied``) and ``rules`` (cross-attribute checks).
- spec: ``type`` is a JSON kind (string, integer, number, boolean, object, array) or a primitive's name, whose
  keys the spec inherits and may override; ``required`` (default false: absent -> ``required``); ``description``.
- string checks, in order: ``format`` (decimal, iso4217, date, date-time, uri) -> ``format``; ``pattern`` (must
  match the whole value) -> ``pattern``; ``enum`` -> ``enum``; ``maxLength`` -> ``max_length``.
- ``minimum`` / ``maximum``: inclusive bounds (numbers or decimal strings) of numbers and decimal strings ->
  ``min_value`` / ``max_value``.
- arrays: ``minItems`` / ``maxItems`` -> ``min_value`` / ``max_value`` on the array (value: the item count);
  ``items`` is the spec of every item. Objects: ``attributes`` (name -> spec); objects are closed, so any other
  key -> ``unknown_attribute``. A wrong JSON kind -> ``type``. A value reports its first failure only.
- primitive: ``name``, ``description``, ``type`` (a JSON kind), ``format`` or ``pattern``, ``attributes`` for an
  object primitive such as money, ``example``.
- rule ``{"kind": "equals", "path": "a[].b.c", "target": "x", "code": "..."}``: every value found at ``path``
  (``[]`` walks each array item) must equal the value at ``target``, else ``code`` at the value's path.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any
from urllib.parse import urlsplit

from mock_server.errors import FieldError, NotFound, ValidationFailed
from mock_server.validation import shorten

Doc = dict[str, Any]
Section = dict[str, Doc]  # file stem -> document

SECTIONS = ("templates", "catalogs", "primitives", "samples")

_KINDS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "string": (str, "a string"), "integer": (int, "an integer"), "number": ((int, float), "a number"),
    "boolean": (bool, "a boolean"), "object": (dict, "an object"), "array": (list, "an array")}
_SPEC_KEYS = frozenset({"type", "required", "description", "example", "format", "pattern", "enum", "maxLength",
                        "minimum", "maximum", "minItems", "maxItems", "items", "attributes"})
_SUMMARY_KEYS = {"templates": ("id", "version", "title", "description"),
                 "catalogs": ("name", "templateId", "description"), "primitives": ("name", "type", "description"),
                 "samples": ("name", "templateId", "templateVersion")}
_PRIMITIVE_ONLY = frozenset({"name", "description", "example"})
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


def _parses(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def _is_uri(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(c.isspace() for c in text)


_FORMATS: dict[str, tuple[Callable[[str], bool], str]] = {
    "decimal": (lambda t: bool(_DECIMAL.fullmatch(t)), "a decimal string such as '20.0'"),
    "iso4217": (lambda t: bool(re.fullmatch(r"[A-Z]{3}", t)), "a three-letter ISO 4217 currency code"),
    "date": (lambda t: bool(_DATE.fullmatch(t)) and _parses(date.fromisoformat, t), "an ISO 8601 date (YYYY-MM-DD)"),
    "date-time": (lambda t: bool(_DATETIME.fullmatch(t)) and _parses(datetime.fromisoformat, t),
                  "an ISO 8601 date-time with a UTC offset"),
    "uri": (_is_uri, "an absolute http(s) URL"),
}


Problem = tuple[str, str] | None  # (code, message)


def _string_problem(spec: Doc, value: object, name: str) -> Problem:
    """The first failing check among format, pattern, enum and maxLength, in that order."""
    fmt, pattern, allowed, limit = (spec.get(k) for k in ("format", "pattern", "enum", "maxLength"))
    if fmt is not None and isinstance(value, str) and not _FORMATS[fmt][0](value):
        return "format", f"{name} must be {_FORMATS[fmt][1]}"
    if pattern is not None and isinstance(value, str) and not re.fullmatch(pattern, value):
        return "pattern", f"{name} must match {pattern}"
    if allowed is not None and value not in allowed:
        return "enum", f"{name} must be one of {', '.join(str(a) for a in allowed)}"
    if limit is not None and isinstance(value, str) and len(value) > limit:
        return "max_length", f"{name} must be at most {limit} characters long"
    return None


def _as_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        return None
    number = Decimal(str(value))  # ints, floats (nan/inf included) and decimal-format strings all convert
    return number if number.is_finite() else None


def _bounds_problem(spec: Doc, value: object, name: str) -> Problem:
    number = _as_decimal(value)
    low, high = spec.get("minimum"), spec.get("maximum")
    if number is None:
        return None
    if low is not None and number < Decimal(str(low)):
        return "min_value", f"{name} must be >= {low}"
    if high is not None and number > Decimal(str(high)):
        return "max_value", f"{name} must be <= {high}"
    return None


def _is_kind(value: object, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _KINDS[kind][0])


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


class _Checker:
    """Walks one value against its spec and collects every failing path."""

    def __init__(self, primitives: Mapping[str, Doc]) -> None:
        self._primitives = primitives
        self.errors: list[FieldError] = []

    def fail(self, path: str, code: str, message: str, value: object = None) -> None:
        self.errors.append(FieldError(path, code, message, shorten(value)))

    def resolve(self, spec: Doc) -> Doc:
        """The spec with its primitive's keys folded in (the spec's own keys win)."""
        kind = spec["type"]
        if kind in _KINDS:
            return spec
        inherited = {k: v for k, v in self._primitives[kind].items() if k not in _PRIMITIVE_ONLY}
        return {**inherited, **{k: v for k, v in spec.items() if k != "type"}}

    def value(self, spec: Doc, value: object, path: str) -> None:
        spec = self.resolve(spec)
        if not _is_kind(value, spec["type"]):
            self.fail(path, "type", f"{_leaf(path)} must be {_KINDS[spec['type']][1]}", value)
        elif isinstance(value, dict):
            self.fields(spec.get("attributes", {}), value, path)
        elif isinstance(value, list):
            self.array(spec, value, path)
        else:
            self.scalar(spec, value, path)

    def fields(self, specs: Mapping[str, Doc], obj: Mapping[str, Any], path: str,
               skip: frozenset[str] = frozenset()) -> None:
        for key, spec in specs.items():
            if key in obj:
                self.value(spec, obj[key], f"{path}.{key}")
            elif spec.get("required", False):
                self.fail(f"{path}.{key}", "required", f"{key} is required")
        owner = "this template" if path == "attributes" else _leaf(path)
        for key, value in obj.items():
            if key not in specs and key not in skip:
                self.fail(f"{path}.{key}", "unknown_attribute", f"{key} is not an attribute of {owner}", value)

    def array(self, spec: Doc, items: list[Any], path: str) -> None:
        low, high, name = spec.get("minItems"), spec.get("maxItems"), _leaf(path)
        if low is not None and len(items) < low:
            self.fail(path, "min_value", f"{name} must have at least {low} item{'s' if low != 1 else ''}", len(items))
        if high is not None and len(items) > high:
            self.fail(path, "max_value", f"{name} must have at most {high} item{'s' if high != 1 else ''}", len(items))
        if "items" in spec:
            for i, item in enumerate(items):
                self.value(spec["items"], item, f"{path}[{i}]")

    def scalar(self, spec: Doc, value: object, path: str) -> None:
        problem = _string_problem(spec, value, _leaf(path)) or _bounds_problem(spec, value, _leaf(path))
        if problem is not None:
            self.fail(path, problem[0], problem[1], value)


def _walk(data: object, dotted: str, prefix: str) -> list[tuple[str, Any]]:
    """Every (path, value) found at ``dotted`` below ``data``; a ``name[]`` segment visits each array item."""
    found: list[tuple[str, Any]] = [(prefix, data)]
    for segment in dotted.split("."):
        key, each = (segment[:-2], True) if segment.endswith("[]") else (segment, False)
        step: list[tuple[str, Any]] = []
        for path, node in found:
            if not isinstance(node, dict) or key not in node:
                continue
            child, child_path = node[key], f"{path}.{key}"
            if not each:
                step.append((child_path, child))
            elif isinstance(child, list):
                step.extend((f"{child_path}[{i}]", item) for i, item in enumerate(child))
        found = step
    return found


def _rule_equals(rule: Doc, attributes: Mapping[str, Any], checker: _Checker) -> None:
    failed = {e.path for e in checker.errors}
    targets = _walk(attributes, rule["target"], "attributes")
    if len(targets) != 1 or targets[0][0] in failed:
        return  # the target is missing or itself wrong: that error already speaks
    expected = targets[0][1]
    for path, value in _walk(attributes, rule["path"], "attributes"):
        if path not in failed and value != expected:
            relative = path.removeprefix("attributes.")
            message = f"{relative} is {value} but must equal {rule['target']} ({expected})"
            checker.fail(path, rule["code"], message, value)


_RULES: dict[str, Callable[[Doc, Mapping[str, Any], _Checker], None]] = {"equals": _rule_equals}


def validate_attributes(template: Doc, attributes: object, primitives: Mapping[str, Doc]) -> list[FieldError]:
    """Every failing attribute of ``attributes`` against ``template`` (paths start with ``attributes``)."""
    if not isinstance(attributes, dict):
        return [FieldError("attributes", "type", "attributes must be an object", shorten(attributes))]
    checker = _Checker(primitives)
    supplied = frozenset(template.get("serverSupplied", ()))
    for key in [k for k in attributes if k in supplied]:
        checker.fail(f"attributes.{key}", "server_supplied", f"{key} is set by the server", attributes[key])
    checker.fields(template.get("attributes", {}), attributes, "attributes", skip=supplied)
    for rule in template.get("rules", ()):
        _RULES[rule["kind"]](rule, attributes, checker)
    return checker.errors


def share_class_slug(name: str) -> str:
    """``sc_`` + the lowerCamelCase ASCII alphanumerics of ``name``: "Founders' class B-2" -> ``sc_foundersClassB2``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().replace("'", "")
    words: list[str] = re.findall(r"[A-Za-z0-9]+", ascii_name)
    if not words:
        return "sc_shareClass"
    camel = words[0].lower() + "".join(w[0].upper() + w[1:] for w in words[1:])
    return "sc_" + camel[:56]  # leaves room for a _NN suffix inside the 60-character slug pattern


def _unique(base: str, taken: set[str]) -> str:
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}_{n}", n + 1
    taken.add(slug)
    return slug


def materialise_share_classes(attributes: Mapping[str, Any]) -> list[Doc]:
    """The ``feesAndCarry.shareClasses`` an approval creates; given slugs are kept, missing ones generated unique."""
    classes = [sc for sc in attributes.get("shareClasses") or () if isinstance(sc, dict)]
    taken = {sc["slug"] for sc in classes if isinstance(sc.get("slug"), str)}
    result: list[Doc] = []
    for sc in classes:
        given = sc.get("slug")
        slug = given if isinstance(given, str) else _unique(share_class_slug(str(sc.get("name", ""))), taken)
        entry: Doc = {"name": sc.get("name"), "slug": slug, "managementFeePercent": sc.get("managementFeePercent"),
                      "carryPercent": sc.get("carryPercent")}
        if sc.get("setupFee") is not None:
            entry["setupFee"] = copy.deepcopy(sc["setupFee"])
        result.append(entry)
    return result


def _check_spec(spec: object, primitives: Mapping[str, Doc], where: str) -> None:
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"{where}: a spec must be an object with a type")
    if unknown := set(spec) - _SPEC_KEYS:
        raise ValueError(f"{where}: unknown spec keys {sorted(unknown)}")
    if spec["type"] not in _KINDS and spec["type"] not in primitives:
        raise ValueError(f"{where}: type {spec['type']!r} is neither a JSON kind nor a primitive")
    if spec.get("format") is not None and spec["format"] not in _FORMATS:
        raise ValueError(f"{where}: unknown format {spec['format']!r}")
    try:
        re.compile(spec.get("pattern") or "")
    except re.error as exc:
        raise ValueError(f"{where}: bad pattern: {exc}") from exc
    if "items" in spec:
        _check_spec(spec["items"], primitives, f"{where}[]")
    for key, child in spec.get("attributes", {}).items():
        _check_spec(child, primitives, f"{where}.{key}")


def _check_version(version: str, sections: Mapping[str, Section]) -> None:
    primitives = sections["primitives"]
    for name, primitive in primitives.items():
        where = f"contracts {version}/primitives/{name}"
        if primitive.get("name") != name or primitive.get("type") not in _KINDS:
            raise ValueError(f"{where}: needs name {name!r} and a JSON kind as type")
        _check_spec({k: v for k, v in primitive.items() if k != "name"}, primitives, where)
    for name, template in sections["templates"].items():
        where = f"contracts {version}/templates/{name}"
        if template.get("id") != name or template.get("version") != version:
            raise ValueError(f"{where}: id and version must repeat the file path")
        for key, spec in template.get("attributes", {}).items():
            _check_spec(spec, primitives, f"{where}: {key}")
        for rule in template.get("rules", ()):
            if rule.get("kind") not in _RULES or not {"path", "target", "code"} <= set(rule):
                raise ValueError(f"{where}: bad rule {rule!r}")
    for name, sample in sections["samples"].items():
        if sample.get("templateVersion") != version or sample.get("templateId") not in sections["templates"]:
            raise ValueError(f"contracts {version}/samples/{name}: must name a template of version {version}")


def _read_section(folder: Traversable) -> Section:
    if not folder.is_dir():
        return {}
    files = [f for f in folder.iterdir() if f.name.endswith(".json") and not f.name.startswith(".")]
    return {f.name.removesuffix(".json"): json.loads(f.read_text(encoding="utf-8"))
            for f in sorted(files, key=lambda f: f.name)}


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in version.split("."))


class ContractRegistry:
    """The read-only contract data of every version, read once; answers are fresh JSON-able copies."""

    def __init__(self, data: Mapping[str, Mapping[str, Section]]) -> None:
        self._data: dict[str, dict[str, Section]] = {}
        for version, sections in data.items():
            complete = {s: dict(sections.get(s, {})) for s in SECTIONS}
            _check_version(version, complete)
            self._data[version] = complete

    @classmethod
    def load(cls) -> ContractRegistry:
        """The registry shipped in the package (``mock_server/data/contracts``)."""
        return cls.from_root(resources.files("mock_server").joinpath("data", "contracts"))

    @classmethod
    def from_root(cls, root: Traversable) -> ContractRegistry:
        """A registry read from ``root/<version>/<section>/<name>.json`` (a package resource or a plain Path)."""
        versions = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith((".", "_"))]
        return cls({d.name: {s: _read_section(d.joinpath(s)) for s in SECTIONS} for d in versions})

    # -- the nine contract routes

    def versions(self) -> Doc:
        return {"versions": sorted(self._data, key=_version_key)}

    def templates(self, version: str) -> Doc:
        return self._listing(version, "templates")

    def template(self, version: str, name: str) -> Doc:
        return copy.deepcopy(self._doc(version, "templates", name))

    def catalogs(self, version: str) -> Doc:
        return self._listing(version, "catalogs")

    def catalog(self, version: str, name: str) -> Doc:
        return copy.deepcopy(self._doc(version, "catalogs", name))

    def primitives(self, version: str) -> Doc:
        return self._listing(version, "primitives")

    def primitive(self, version: str, name: str) -> Doc:
        return copy.deepcopy(self._doc(version, "primitives", name))

    def samples(self, version: str) -> Doc:
        return self._listing(version, "samples")

    def sample(self, version: str, name: str) -> Doc:
        return copy.deepcopy(self._doc(version, "samples", name))

    # -- the SPV-request flow

    def find_template(self, template_id: str, version: str) -> Doc:
        """The template an SPV request names, or 404 naming both id and version."""
        return copy.deepcopy(self._template(template_id, version))

    def attribute_errors(self, template_id: str, version: str, attributes: object) -> list[FieldError]:
        """Every failing attribute (empty when valid); 404 when the template does not exist."""
        template = self._template(template_id, version)
        return validate_attributes(template, attributes, self._data[version]["primitives"])

    def validate(self, template_id: str, version: str, attributes: object) -> None:
        """Raise 404 for an unknown template, 400 ``validation_error`` listing every failing attribute."""
        errors = self.attribute_errors(template_id, version, attributes)
        if errors:
            raise ValidationFailed(errors)

    @staticmethod
    def materialise_share_classes(attributes: Mapping[str, Any]) -> list[Doc]:
        return materialise_share_classes(attributes)

    # -- lookups

    def _template(self, template_id: str, version: str) -> Doc:
        template = self._data.get(version, {}).get("templates", {}).get(template_id)
        if template is None:
            raise NotFound(f"contract template {template_id!r} version {version!r} does not exist")
        return template

    def _section(self, version: str, section: str) -> Section:
        if version not in self._data:
            raise NotFound(f"contract version {version!r} does not exist")
        return self._data[version][section]

    def _listing(self, version: str, section: str) -> Doc:
        keys = _SUMMARY_KEYS[section]
        docs = self._section(version, section)
        return {"version": version, section: [{k: name if k == "name" else copy.deepcopy(doc.get(k)) for k in keys}
                                              for name, doc in docs.items()]}

    def _doc(self, version: str, section: str, name: str) -> Doc:
        doc = self._section(version, section).get(name)
        if doc is None:
            kind = section.removesuffix("s")
            raise NotFound(f"contract {kind} {name!r} version {version!r} does not exist")
        return doc
