"""The partner registry (owner of the ``partners`` table): client_id -> Ed25519 public key, tenant, provisioning,
webhook endpoint and secret, and webhook chaos settings."""

from __future__ import annotations

import json
from dataclasses import dataclass

from mock_server.clock import Clock, format_instant
from mock_server.dev_partner import DEV_PARTNER_DIR
from mock_server.errors import Conflict, InvalidRequest, NotFound
from mock_server.ids import IdGenerator
from mock_server.presets import DEV_CLIENT_ID
from mock_server.store import Row, Store


@dataclass(frozen=True, slots=True)
class Partner:
    client_id: str
    tenant_slug: str
    public_key_pem: str
    provisioned: bool
    webhook_url: str | None
    webhook_secret: str
    issuer: str | None = None
    chaos: str = "{}"  # webhook chaos settings as stored JSON (``webhooks.chaos`` parses them)

    def public(self) -> dict[str, object]:
        return {
            "clientId": self.client_id, "tenantSlug": self.tenant_slug, "provisioned": self.provisioned,
            "publicKeyPem": self.public_key_pem, "webhookUrl": self.webhook_url,
            "webhookSecret": self.webhook_secret, "issuer": self.issuer,
        }


@dataclass(frozen=True, slots=True)
class NewPartner:
    partner: Partner
    private_key_pem: str | None


def ensure_dev_partner(store: Store, clock: Clock, webhook_url: str | None, webhook_secret: str | None) -> Partner:
    """Register the out-of-the-box dev partner unless it exists; flags override its webhook settings."""
    config = json.loads((DEV_PARTNER_DIR / "partner.json").read_text())
    existing = find(store, DEV_CLIENT_ID)
    if existing is None:
        _insert(store, clock, Partner(
            client_id=DEV_CLIENT_ID, tenant_slug=config["tenantSlug"], public_key_pem=config["publicKeyPem"],
            provisioned=True, webhook_url=webhook_url, webhook_secret=webhook_secret or config["webhookSecret"],
        ))
    elif webhook_url or webhook_secret:
        set_webhook(store, DEV_CLIENT_ID, webhook_url or existing.webhook_url,
                    webhook_secret or existing.webhook_secret)
    return get(store, DEV_CLIENT_ID)


def register(
    store: Store, clock: Clock, ids: IdGenerator, *, client_id: str, tenant_slug: str,
    public_key_pem: str | None = None, provisioned: bool = True, webhook_url: str | None = None,
    webhook_secret: str | None = None, issuer: str | None = None,
) -> NewPartner:
    """Add a partner; a keypair is generated (and its private half returned) when no public key is given."""
    if find(store, client_id) is not None:
        raise Conflict(f"partner {client_id!r} is already registered")
    private_pem = None
    if public_key_pem is None:
        private_pem, public_key_pem = _generate_keypair(ids)
    elif "BEGIN PUBLIC KEY" not in public_key_pem:
        raise InvalidRequest("publicKeyPem must be a PEM-encoded Ed25519 public key")
    partner = Partner(
        client_id=client_id, tenant_slug=tenant_slug, public_key_pem=public_key_pem, provisioned=provisioned,
        webhook_url=webhook_url, webhook_secret=webhook_secret or ids.hex("whsec_", 32), issuer=issuer,
    )
    _insert(store, clock, partner)
    return NewPartner(partner, private_pem)


def find(store: Store, client_id: str) -> Partner | None:
    row = store.one("SELECT * FROM partners WHERE client_id = ?", client_id)
    return _from_row(row) if row else None


def get(store: Store, client_id: str) -> Partner:
    partner = find(store, client_id)
    if partner is None:
        raise NotFound(f"partner {client_id!r} is not registered")
    return partner


def all_partners(store: Store) -> list[Partner]:
    return [_from_row(r) for r in store.all("SELECT * FROM partners ORDER BY created_at, client_id")]


def set_webhook(store: Store, client_id: str, url: str | None, secret: str | None) -> Partner:
    partner = get(store, client_id)
    store.run("UPDATE partners SET webhook_url = ?, webhook_secret = ? WHERE client_id = ?",
              url, secret or partner.webhook_secret, client_id)
    return get(store, client_id)


def chaos(store: Store, client_id: str) -> str | None:
    """The partner's webhook chaos settings as stored JSON (``webhooks.chaos`` parses them)."""
    row = store.one("SELECT chaos FROM partners WHERE client_id = ?", client_id)
    return row["chaos"] if row else None


def set_chaos(store: Store, client_id: str, raw: str) -> None:
    store.run("UPDATE partners SET chaos = ? WHERE client_id = ?", raw, client_id)


def clear_chaos(store: Store) -> None:
    """Webhook chaos is test state, not partner configuration: a reset that keeps partners drops it."""
    store.run("UPDATE partners SET chaos = '{}'")


def _insert(store: Store, clock: Clock, p: Partner) -> None:
    store.run(
        "INSERT INTO partners (client_id, public_key_pem, tenant_slug, provisioned, issuer, webhook_url, "
        "webhook_secret, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        p.client_id, p.public_key_pem, p.tenant_slug, int(p.provisioned), p.issuer, p.webhook_url,
        p.webhook_secret, format_instant(clock.now()),
    )


def _from_row(row: Row) -> Partner:
    return Partner(
        client_id=row["client_id"], tenant_slug=row["tenant_slug"], public_key_pem=row["public_key_pem"],
        provisioned=bool(row["provisioned"]), webhook_url=row["webhook_url"], webhook_secret=row["webhook_secret"],
        issuer=row["issuer"], chaos=row["chaos"],
    )


def _generate_keypair(ids: IdGenerator) -> tuple[str, str]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # first use: not at start-up
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(ids.hex("", 32)))  # seeded, so replayable
    private_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    return private_pem, public_pem
