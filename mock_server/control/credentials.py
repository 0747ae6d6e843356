"""Control route of the dev partner's credentials as the running mock sees them: what a partner configures.

The private key is not here: it ships in the package (``zest-mock dev-credentials`` prints its path). The audience
is the first ``aud`` this very call would accept, so it reflects ``--audience`` and the URL the mock is reached at.
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response

from mock_server.domain import auth, partners
from mock_server.domain.partners import DEV_CLIENT_ID
from mock_server.errors import NotFound
from mock_server.http.bodies import json_response
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Call, Operation


class DevCredentials(BaseModel):
    clientId: str
    tenantSlug: str
    audience: str
    acceptedAudiences: list[str]
    webhookUrl: str | None
    webhookSecret: str


async def dev_credentials(call: Call) -> Response:
    partner = partners.find(call.rt.store, DEV_CLIENT_ID)
    if partner is None:
        raise NotFound(f"this mock has no {DEV_CLIENT_ID} partner")
    accepted = auth.accepted_audiences(call.rt.settings, str(call.request.base_url))
    return json_response({"clientId": partner.client_id, "tenantSlug": partner.tenant_slug, "audience": accepted[0],
                          "acceptedAudiences": list(accepted), "webhookUrl": partner.webhook_url,
                          "webhookSecret": partner.webhook_secret})


OPERATIONS = [
    Operation("GET", "/_mock/dev-credentials", "getDevCredentials", "Mock state",
              "The dev partner's client id, JWT audience and webhook secret", dev_credentials,
              {200: Answer("What a partner configures to talk to this mock", DevCredentials), **errors(404)},
              plane="control"),
]
