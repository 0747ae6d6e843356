"""What the console stands on, without a browser: its page and assets, the admin listings, and that every call its
script makes is a documented operation."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from starlette.testclient import TestClient
from support import PDF, PNG, create_spv_request, subscription

from mock_server.http import assets

CONSOLE_JS = Path(assets.__file__).resolve().parent.parent / "data" / "console" / "console.js"


def test_root_links_the_docs_and_the_console(client: TestClient) -> None:
    links = client.get("/").json()["links"]
    assert links == {"docs": "/docs", "controlDocs": "/_mock/docs", "console": "/_mock/console"}
    for path in links.values():
        assert client.get(path).status_code == 200


def test_the_console_page_loads_nothing_from_the_network(client: TestClient) -> None:
    page = client.get("/_mock/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    referenced = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/_mock/assets/console/console.js" in referenced and "/_mock/assets/console/console.css" in referenced
    assert [url for url in referenced if "//" in url] == []
    for url in referenced:
        if url.startswith("/_mock/assets/"):
            assert client.get(url).status_code == 200, url


def test_swagger_ui_is_served_from_the_package_with_its_licence(client: TestClient) -> None:
    docs = client.get("/docs").text
    assert "unpkg" not in docs and "cdn" not in docs.lower()
    bundle = client.get("/_mock/assets/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and bundle.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in bundle.text
    assert "Apache License" in client.get("/_mock/assets/swagger-ui/LICENSE").text
    tag = {"If-None-Match": bundle.headers["etag"]}
    assert client.get("/_mock/assets/swagger-ui/swagger-ui.css", headers=tag).status_code == 200  # another file's
    cached = client.get("/_mock/assets/swagger-ui/swagger-ui-bundle.js", headers=tag)
    assert cached.status_code == 304 and cached.content == b""


def test_unknown_assets_are_404_in_the_envelope(client: TestClient) -> None:
    for path in ("/_mock/assets/console/nope.js", "/_mock/assets/secrets/index.html",
                 "/_mock/assets/console/..%2F..%2Fapp.py", "/_mock/assets/console/.hidden"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"


def test_admin_lists_every_partners_spv_requests(client: TestClient, headers: dict[str, str]) -> None:
    beta = client.post("/_mock/partners", json={"clientId": "beta", "tenantSlug": "beta-t"}).json()
    assert beta["clientId"] == "beta"
    token = client.post("/_mock/tokens", json={"clientId": "beta"}).json()["accessToken"]
    beta_headers = {"Authorization": f"Bearer {token}"}
    first = create_spv_request(client, headers).json()["spvRequestSlug"]
    second = create_spv_request(client, beta_headers).json()["spvRequestSlug"]
    client.post(f"/_mock/admin/spv-requests/{first}/approve")

    items = client.get("/_mock/admin/spv-requests").json()["items"]
    assert [(r["spvRequestSlug"], r["clientId"], r["status"]) for r in items] == [
        (first, "dev-partner", "approved"), (second, "beta", "pending-review")]
    assert items[0]["materialisedRefs"]["vehicleSlug"].startswith("veh_")
    pending = client.get("/_mock/admin/spv-requests", params={"status": "pending-review"}).json()["items"]
    assert [r["spvRequestSlug"] for r in pending] == [second]
    assert client.get("/_mock/admin/spv-requests", params={"clientId": "beta", "status": "approved"}).json() == {
        "items": []}
    assert [r["spvRequestSlug"] for r in client.get("/_mock/admin/spv-requests?limit=1").json()["items"]] == [second]
    bad = client.get("/_mock/admin/spv-requests", params={"status": "done"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"
    assert client.get("/_mock/admin/spv-requests?limit=0").status_code == 400


def test_admin_lists_subscriptions_with_form_funding_and_file_links(client: TestClient,
                                                                   headers: dict[str, str]) -> None:
    vehicle, person, slug = subscription(client, headers)
    (row,) = client.get("/_mock/admin/subscriptions").json()["items"]
    assert (row["subscriptionSlug"], row["status"], row["partnerInvestorId"]) == (slug, "pending", "acme-inv-1")
    assert "form" not in row and "funding" not in row

    base = f"/v1/spvs/{vehicle}/subscription/{person}"
    client.post(f"{base}/forms", files={"file": ("form.pdf", PDF, "application/pdf")}, headers=headers)
    client.post(f"{base}/fundings", files={"file": ("receipt.png", PNG, "image/png")},
                data={"amount": "50000.00", "currency": "USD", "wireReference": "W-1"}, headers=headers)
    (row,) = client.get("/_mock/admin/subscriptions", params={"status": "funded"}).json()["items"]
    assert row["funding"]["wireReference"] == "W-1" and row["funding"]["amount"] == "50000.00"
    assert client.get(httpx.URL(row["form"]["url"]).raw_path.decode()).content == PDF
    assert client.get(httpx.URL(row["funding"]["url"]).raw_path.decode()).content == PNG
    assert client.get("/_mock/admin/subscriptions", params={"status": "completed"}).json() == {"items": []}


def test_every_call_of_the_console_is_a_documented_operation(client: TestClient) -> None:
    documented = {**client.get("/_mock/openapi.json").json()["paths"], **client.get("/openapi.json").json()["paths"]}
    patterns = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in documented]
    calls = re.findall(r'api\("(GET|POST|PUT|DELETE)", [`"]([^`"]+)[`"]', CONSOLE_JS.read_text())
    assert len(calls) >= 20
    for method, raw in calls:
        path = re.sub(r"\$\{[^}]+\}", "x", raw).split("?")[0]
        matched = [spec for pattern, spec in patterns if pattern.match(path)]
        assert matched, f"{method} {raw} is not a documented path"
        assert any(method.lower() in documented[spec] for spec in matched), f"{method} {raw} is not documented"
