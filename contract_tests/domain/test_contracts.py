"""The contract registry: the shipped data, the nine read routes' bodies, template-driven attribute validation
(every code, exact paths, many errors at once), share-class materialisation, and data-only extension."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from mock_server.contracts import ContractRegistry, materialise_share_classes, share_class_slug
from mock_server.errors import NotFound, ValidationFailed

V = "1.0.0"
T = "syndicate_secondary"
PRIMITIVES = {"money", "percent", "currency", "slug", "date", "datetime", "url"}
SERVER_SUPPLIED = ["spvRequestSlug", "tenantSlug", "clientId", "status", "materialisedRefs"]


@pytest.fixture(scope="module")
def registry() -> ContractRegistry:
    return ContractRegistry.load()


def valid() -> dict[str, Any]:
    return {"underlyingCompanySlug": "co_acme", "currency": "USD",
            "shareClasses": [{"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0"}]}


def errors(registry: ContractRegistry, attributes: object) -> list[tuple[str, str, Any]]:
    return [(e.path, e.code, e.value) for e in registry.attribute_errors(T, V, attributes)]


def share_class(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(attrs: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is _DELETE:
                del attrs["shareClasses"][0][key]
            else:
                attrs["shareClasses"][0][key] = value
    return mutate


def top(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(attrs: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is _DELETE:
                del attrs[key]
            else:
                attrs[key] = value
    return mutate


_DELETE = object()
SC0 = "attributes.shareClasses[0]"


# ------------------------------------------------------------------------------------------- shipped data

def test_sample_validates_clean(registry: ContractRegistry) -> None:
    sample = registry.sample(V, T)
    assert sample == {"templateId": T, "templateVersion": V, "attributes": valid()}
    assert registry.attribute_errors(sample["templateId"], sample["templateVersion"], sample["attributes"]) == []
    registry.validate(T, V, sample["attributes"])  # does not raise


def test_every_shipped_sample_validates_clean(registry: ContractRegistry) -> None:
    for version in registry.versions()["versions"]:
        for entry in registry.samples(version)["samples"]:
            body = registry.sample(version, entry["name"])
            assert registry.attribute_errors(body["templateId"], body["templateVersion"], body["attributes"]) == []


def test_route_bodies(registry: ContractRegistry) -> None:
    assert registry.versions() == {"versions": [V]}
    listing = registry.templates(V)
    assert listing["version"] == V
    assert [t["id"] for t in listing["templates"]] == [T]
    assert set(listing["templates"][0]) == {"id", "version", "title", "description"}
    template = registry.template(V, T)
    assert template["id"] == T and template["version"] == V and template["serverSupplied"] == SERVER_SUPPLIED
    assert {p["name"] for p in registry.primitives(V)["primitives"]} == PRIMITIVES
    for name in PRIMITIVES:
        primitive = registry.primitive(V, name)
        assert primitive["name"] == name and primitive["description"] and primitive["type"]
        assert "format" in primitive or "pattern" in primitive or "attributes" in primitive
    assert [c["name"] for c in registry.catalogs(V)["catalogs"]] == [T]
    assert [s["name"] for s in registry.samples(V)["samples"]] == [T]
    json.dumps([registry.catalog(V, T), registry.sample(V, T), template])  # plain JSON


def test_catalog_lists_every_template_attribute(registry: ContractRegistry) -> None:
    template = registry.template(V, T)
    names = set(template["attributes"])
    names |= {f"shareClasses[].{k}" for k in template["attributes"]["shareClasses"]["items"]["attributes"]}
    catalog = registry.catalog(V, T)
    assert {a["name"] for a in catalog["attributes"]} == names
    assert all(a["type"] and a["description"] for a in catalog["attributes"])


def test_answers_are_copies(registry: ContractRegistry) -> None:
    registry.template(V, T)["attributes"].clear()
    registry.sample(V, T)["attributes"]["currency"] = "EUR"
    registry.find_template(T, V)["attributes"].clear()
    assert registry.template(V, T)["attributes"]
    assert registry.attribute_errors(T, V, valid()) == []


@pytest.mark.parametrize(("call", "detail"), [
    (lambda r: r.templates("9.9.9"), "contract version '9.9.9' does not exist"),
    (lambda r: r.catalogs("9.9.9"), "contract version '9.9.9' does not exist"),
    (lambda r: r.primitives("9.9.9"), "contract version '9.9.9' does not exist"),
    (lambda r: r.samples("9.9.9"), "contract version '9.9.9' does not exist"),
    (lambda r: r.template("9.9.9", T), "contract version '9.9.9' does not exist"),
    (lambda r: r.template(V, "x"), "contract template 'x' version '1.0.0' does not exist"),
    (lambda r: r.catalog(V, "x"), "contract catalog 'x' version '1.0.0' does not exist"),
    (lambda r: r.primitive(V, "x"), "contract primitive 'x' version '1.0.0' does not exist"),
    (lambda r: r.sample(V, "x"), "contract sample 'x' version '1.0.0' does not exist"),
    (lambda r: r.find_template("x", V), "contract template 'x' version '1.0.0' does not exist"),
    (lambda r: r.find_template(T, "2.0.0"), f"contract template '{T}' version '2.0.0' does not exist"),
    (lambda r: r.validate("x", V, valid()), "contract template 'x' version '1.0.0' does not exist"),
])
def test_unknown_version_or_name_is_not_found(registry: ContractRegistry, call: Callable[[ContractRegistry], object],
                                              detail: str) -> None:
    with pytest.raises(NotFound) as caught:
        call(registry)
    assert caught.value.detail == detail and caught.value.status == 404


# ---------------------------------------------------------------------------------------------- validation

@pytest.mark.parametrize(("mutate", "path", "code", "value"), [
    (top(currency=_DELETE), "attributes.currency", "required", None),
    (top(shareClasses=_DELETE), "attributes.shareClasses", "required", None),
    (share_class(carryPercent=_DELETE), f"{SC0}.carryPercent", "required", None),
    (share_class(setupFee={"currency": "USD"}), f"{SC0}.setupFee.value", "required", None),
    (top(dealName="x"), "attributes.dealName", "unknown_attribute", "x"),
    (share_class(fee="1"), f"{SC0}.fee", "unknown_attribute", "1"),
    (share_class(setupFee={"currency": "USD", "value": "1", "x": 1}), f"{SC0}.setupFee.x", "unknown_attribute", 1),
    (top(shareClasses="Class A"), "attributes.shareClasses", "type", "Class A"),
    (top(shareClasses=["Class A"]), SC0, "type", "Class A"),
    (share_class(carryPercent=20), f"{SC0}.carryPercent", "type", 20),
    (share_class(name=True), f"{SC0}.name", "type", True),
    (share_class(setupFee="10 USD"), f"{SC0}.setupFee", "type", "10 USD"),
    (top(currency="JPY"), "attributes.currency", "enum", "JPY"),
    (top(currency="usd"), "attributes.currency", "format", "usd"),
    (share_class(managementFeePercent="two"), f"{SC0}.managementFeePercent", "format", "two"),
    (share_class(carryPercent="1e2"), f"{SC0}.carryPercent", "format", "1e2"),
    (share_class(carryPercent="NaN"), f"{SC0}.carryPercent", "format", "NaN"),
    (share_class(setupFee={"currency": "USD", "value": "ten"}), f"{SC0}.setupFee.value", "format", "ten"),
    (top(underlyingCompanySlug="Acme Co"), "attributes.underlyingCompanySlug", "pattern", "Acme Co"),
    (top(underlyingCompanySlug="co_acme\n"), "attributes.underlyingCompanySlug", "pattern", "co_acme\n"),
    (share_class(slug="class-a"), f"{SC0}.slug", "pattern", "class-a"),
    (share_class(name="x" * 101), f"{SC0}.name", "max_length", "x" * 101),
    (share_class(carryPercent="-1.0"), f"{SC0}.carryPercent", "min_value", "-1.0"),
    (share_class(managementFeePercent="-0.01"), f"{SC0}.managementFeePercent", "min_value", "-0.01"),
    (share_class(setupFee={"currency": "USD", "value": "-5"}), f"{SC0}.setupFee.value", "min_value", "-5"),
    (top(shareClasses=[]), "attributes.shareClasses", "min_value", 0),
    (share_class(carryPercent="100.01"), f"{SC0}.carryPercent", "max_value", "100.01"),
    (share_class(managementFeePercent="250"), f"{SC0}.managementFeePercent", "max_value", "250"),
    (top(shareClasses=[valid()["shareClasses"][0]] * 11), "attributes.shareClasses", "max_value", 11),
    (share_class(setupFee={"currency": "EUR", "value": "500"}), f"{SC0}.setupFee.currency", "currency_mismatch", "EUR"),
] + [(top(**{name: "x"}), f"attributes.{name}", "server_supplied", "x") for name in SERVER_SUPPLIED])
def test_each_code_at_its_exact_path(registry: ContractRegistry, mutate: Callable[[dict[str, Any]], None],
                                     path: str, code: str, value: Any) -> None:
    attributes = valid()
    mutate(attributes)
    assert errors(registry, attributes) == [(path, code, value)]


@pytest.mark.parametrize("mutate", [
    share_class(carryPercent="0", managementFeePercent="100"),
    share_class(carryPercent="100.00", managementFeePercent="0.0"),
    share_class(name="x" * 100, slug="sc_my-Class_1"),
    share_class(setupFee={"currency": "USD", "value": "0"}),
    top(shareClasses=[valid()["shareClasses"][0]] * 10),
    top(currency="SAR", underlyingCompanySlug="a1"),
])
def test_boundaries_are_accepted(registry: ContractRegistry, mutate: Callable[[dict[str, Any]], None]) -> None:
    attributes = valid()
    mutate(attributes)
    assert errors(registry, attributes) == []


def test_docs_example_message(registry: ContractRegistry) -> None:
    attributes = valid()
    attributes["shareClasses"][0]["carryPercent"] = "-1.0"
    (error,) = registry.attribute_errors(T, V, attributes)
    assert error.to_wire() == {"field": f"{SC0}.carryPercent", "attribute": f"{SC0}.carryPercent",
                               "code": "min_value", "message": "carryPercent must be >= 0", "value": "-1.0"}


@pytest.mark.parametrize("attributes", [[], "x", None, 3])
def test_attributes_not_an_object(registry: ContractRegistry, attributes: object) -> None:
    assert [(p, c) for p, c, _ in errors(registry, attributes)] == [("attributes", "type")]


def test_every_failing_attribute_is_reported_at_once(registry: ContractRegistry) -> None:
    attributes = {
        "currency": "JPY", "status": "approved", "extra": 1,
        "shareClasses": [
            {"name": "A", "managementFeePercent": "2", "carryPercent": "-1.0"},
            {"managementFeePercent": "x", "carryPercent": "101", "setupFee": {"currency": "EUR", "value": "1"}},
        ],
    }
    assert {(p, c) for p, c, _ in errors(registry, attributes)} == {
        ("attributes.status", "server_supplied"),
        ("attributes.underlyingCompanySlug", "required"),
        ("attributes.currency", "enum"),
        ("attributes.shareClasses[0].carryPercent", "min_value"),
        ("attributes.shareClasses[1].name", "required"),
        ("attributes.shareClasses[1].managementFeePercent", "format"),
        ("attributes.shareClasses[1].carryPercent", "max_value"),
        ("attributes.extra", "unknown_attribute"),
    }  # no currency_mismatch: the top-level currency is itself wrong, so its own error speaks


def test_validate_raises_validation_failed(registry: ContractRegistry) -> None:
    attributes = valid()
    del attributes["currency"]
    attributes["shareClasses"][0]["carryPercent"] = "-1"
    with pytest.raises(ValidationFailed) as caught:
        registry.validate(T, V, attributes)
    assert caught.value.status == 400 and caught.value.code == "validation_error"
    assert [e.code for e in caught.value.field_errors] == ["required", "min_value"]


# ---------------------------------------------------------------------------------------------- share classes

@pytest.mark.parametrize(("name", "slug"), [
    ("Class A", "sc_classA"),
    ("Founders' class B-2", "sc_foundersClassB2"),
    ("  SERIES seed  ", "sc_seriesSeed"),
    ("Classé Ünique", "sc_classeUnique"),
    ("!!!", "sc_shareClass"),
])
def test_share_class_slug(name: str, slug: str) -> None:
    assert share_class_slug(name) == slug


def test_long_names_leave_room_for_a_suffix(registry: ContractRegistry) -> None:
    name = "word " * 40
    slugs = [sc["slug"] for sc in materialise_share_classes({"shareClasses": [{"name": name}] * 10})]
    attributes = valid()
    attributes["shareClasses"] = [{"name": "n", "slug": s, "managementFeePercent": "1", "carryPercent": "1"}
                                  for s in slugs]
    assert len(set(slugs)) == 10
    assert errors(registry, attributes) == []  # every generated slug passes the template's own slug pattern


def test_materialise_share_classes() -> None:
    fee = {"currency": "USD", "value": "250.00"}
    attributes = {"shareClasses": [
        {"name": "Class A", "managementFeePercent": "2.0", "carryPercent": "20.0", "setupFee": fee},
        {"name": "Class A", "managementFeePercent": "1.5", "carryPercent": "10.0"},
        {"name": "Class B", "slug": "sc_classA_3", "managementFeePercent": "0", "carryPercent": "0"},
        {"name": "class a", "managementFeePercent": "0", "carryPercent": "5"},
    ]}
    result = materialise_share_classes(attributes)
    assert result == [
        {"name": "Class A", "slug": "sc_classA", "managementFeePercent": "2.0", "carryPercent": "20.0",
         "setupFee": fee},
        {"name": "Class A", "slug": "sc_classA_2", "managementFeePercent": "1.5", "carryPercent": "10.0"},
        {"name": "Class B", "slug": "sc_classA_3", "managementFeePercent": "0", "carryPercent": "0"},
        {"name": "class a", "slug": "sc_classA_4", "managementFeePercent": "0", "carryPercent": "5"},
    ]
    result[0]["setupFee"]["value"] = "0"
    assert fee["value"] == "250.00"  # a copy, not the submitted object
    assert ContractRegistry.materialise_share_classes(attributes)[1]["slug"] == "sc_classA_2"


# ------------------------------------------------------------------------------------------ data-only growth

def _copy_shipped_data(target: Path) -> Path:
    with resources.as_file(resources.files("mock_server") / "data" / "contracts") as shipped:
        shutil.copytree(shipped, target)
    return target


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")


CLOSING = {
    "id": "closing_notice", "version": V, "title": "Closing notice", "description": "A test-only template.",
    "serverSupplied": ["status"],
    "attributes": {
        "closingDate": {"type": "date", "required": True},
        "deckUrl": {"type": "url", "required": False},
        "tickets": {"type": "integer", "required": True, "minimum": 1, "maximum": 500},
        "minimumTicket": {"type": "money", "required": True},
        "currency": {"type": "currency", "required": True, "enum": ["USD", "EUR"]},
    },
    "rules": [{"kind": "equals", "path": "minimumTicket.currency", "target": "currency", "code": "currency_mismatch"}],
}


def test_a_new_template_and_version_need_only_data(tmp_path: Path) -> None:
    root = _copy_shipped_data(tmp_path / "contracts")
    _write(root / V / "templates" / "closing_notice.json", CLOSING)
    shutil.copytree(root / V, root / "1.10.0")
    for section, name, key in [("templates", "closing_notice", "version"), ("templates", T, "version"),
                               ("samples", T, "templateVersion")]:
        doc = json.loads((root / "1.10.0" / section / f"{name}.json").read_text(encoding="utf-8"))
        _write(root / "1.10.0" / section / f"{name}.json", {**doc, key: "1.10.0"})
    registry = ContractRegistry.from_root(root)

    assert registry.versions() == {"versions": [V, "1.10.0"]}
    assert [t["id"] for t in registry.templates(V)["templates"]] == ["closing_notice", T]
    good = {"closingDate": "2026-07-01", "deckUrl": "https://example.com/d.pdf", "tickets": 10,
            "minimumTicket": {"currency": "USD", "value": "1000"}, "currency": "USD"}
    assert registry.attribute_errors("closing_notice", "1.10.0", good) == []
    bad = {"closingDate": "2026-02-30", "deckUrl": "example.com", "tickets": True, "status": "x",
           "minimumTicket": {"currency": "EUR", "value": "1"}, "currency": "USD"}
    assert [(e.path, e.code) for e in registry.attribute_errors("closing_notice", V, bad)] == [
        ("attributes.status", "server_supplied"),
        ("attributes.closingDate", "format"),
        ("attributes.deckUrl", "format"),
        ("attributes.tickets", "type"),
        ("attributes.minimumTicket.currency", "currency_mismatch"),
    ]
    over = {**good, "tickets": 501}
    assert [(e.code, e.value) for e in registry.attribute_errors("closing_notice", V, over)] == [("max_value", 501)]
    assert registry.attribute_errors(T, "1.10.0", valid()) == []


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t["attributes"]["closingDate"].update(type="calendar"), "neither a JSON kind nor a primitive"),
    (lambda t: t["attributes"]["closingDate"].update(maxlength=3), "unknown spec keys"),
    (lambda t: t["attributes"]["closingDate"].update(format="iso-week"), "unknown format"),
    (lambda t: t.update(id="other"), "id and version must repeat the file path"),
    (lambda t: t["rules"][0].update(kind="sum"), "bad rule"),
    (lambda t: t["attributes"]["minimumTicket"].update(pattern="("), "bad pattern"),
])
def test_inconsistent_data_fails_at_load(tmp_path: Path, change: Callable[[dict[str, Any]], None],
                                         message: str) -> None:
    root = _copy_shipped_data(tmp_path / "contracts")
    template = copy.deepcopy(CLOSING)
    change(template)
    _write(root / V / "templates" / "closing_notice.json", template)
    with pytest.raises(ValueError, match=message):
        ContractRegistry.from_root(root)
