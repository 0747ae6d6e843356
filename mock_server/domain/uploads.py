"""Signed forms and funding receipts: type checks, content-addressed storage, the Bid's state moves, signed URLs.

A file is kept once, keyed by the SHA-256 of its bytes. A subscription points at its form and its receipt by that
key; re-sending byte-identical content (and, for a receipt, identical metadata) changes nothing and emits nothing,
different content replaces the pointer and emits the upload event again. Partners only ever see time-limited URLs
``{base_url}/_mock/files/{sha256}?expires=<unix>&sig=<hex>``, signed with a per-instance HMAC key and judged on the
simulated clock.

Bytes move in chunks both ways, never whole: an accepted file goes from its spool into the ``files`` row through
SQLite's incremental BLOB I/O (a zeroblob of its size, then written chunk by chunk), and a signed URL serves it
back the same way, so an upload costs the process about its own size (the stored row), not several copies.

Checks run in this order: the request itself (fields 400, file type 415), then the Bid (404, then 409), as a
FastAPI service validates its form before the handler looks anything up.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import IO

from mock_server.domain import policy, subscriptions
from mock_server.domain.partners import Partner
from mock_server.errors import Conflict, FieldError, Forbidden, NotFound, UnsupportedMediaType, ValidationFailed
from mock_server.models import FormUploadResponse, FundingUploadResponse
from mock_server.runtime import Runtime
from mock_server.store import Row, Store
from mock_server.webhooks import events

ACCEPTED_TYPES = ("application/pdf", "image/jpeg", "image/png", "image/webp")
SNIFF_BYTES = 16
AMOUNT_RE = re.compile(r"[0-9]+(\.[0-9]{1,2})?")  # fullmatch: no trailing newline, ASCII digits only
CURRENCY_RE = re.compile(r"[A-Z]{3}")  # fullmatch
WIRE_REFERENCE_MAX = 200
CHUNK_BYTES = 256 * 1024  # what moves between a spool, a BLOB and a response at a time
_SECRET_KEY = "file_url_secret"


@dataclass(frozen=True, slots=True)
class Upload:
    """A received file part, complete: its declared type, its bytes in a seekable file (a spool), their size and
    SHA-256 (hex). Read it in chunks (``chunks``), never whole."""

    declared_type: str
    file: IO[bytes]
    size: int
    sha256: str
    filename: str = ""

    @classmethod
    def of(cls, declared_type: str, data: bytes, filename: str = "") -> Upload:
        return cls(declared_type, io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest(), filename)

    def head(self) -> bytes:
        self.file.seek(0)
        return self.file.read(SNIFF_BYTES)

    def chunks(self) -> Iterator[bytes]:
        self.file.seek(0)
        while chunk := self.file.read(CHUNK_BYTES):
            yield chunk


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file behind a signed URL: its type, size and where its bytes are (read them with ``file_chunks``)."""

    content_type: str
    size: int
    rowid: int


def sniff(head: bytes) -> str | None:
    """The accepted type whose magic bytes ``head`` starts with, else None."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_type(declared: str, head: bytes, *, sniffing: bool = True) -> str:
    """The stored content type, or 415: the declared type must be accepted and agree with the magic bytes."""
    media_type = declared.split(";")[0].strip().lower()
    accepted = ", ".join(ACCEPTED_TYPES)
    if media_type not in ACCEPTED_TYPES:
        shown = media_type or "none"
        raise UnsupportedMediaType(f"file part Content-Type {shown!r} is not accepted; send one of {accepted}")
    if not sniffing:
        return media_type
    found = sniff(head[:SNIFF_BYTES])
    if found is None:
        what = "the file is empty" if not head else "its first bytes match none of PDF, JPEG, PNG, WEBP"
        raise UnsupportedMediaType(f"file part is declared {media_type} but {what}")
    if found != media_type:
        raise UnsupportedMediaType(f"file part is declared {media_type} but its content is {found}")
    return media_type


def store_form(rt: Runtime, partner: Partner, spv_slug: str, person_id: str, upload: Upload) -> FormUploadResponse:
    """Record the signed subscription form of ``person_id`` on ``spv_slug`` (run inside ``rt.store.tx()``)."""
    content_type = _check_upload(rt, upload)
    row = _open_row(rt, partner.client_id, spv_slug, person_id)
    if row["form_sha256"] != upload.sha256:
        _put_file(rt, upload, content_type)
        subscriptions.record_form(rt, row["slug"], upload.sha256)
        row = subscriptions.holder_row(rt, partner.client_id, spv_slug, person_id)
        url = signed_url(rt, upload.sha256)
        events.emit(rt.store, rt.ids, partner.client_id, "signed_subscription_form.uploaded",
                    events.form_uploaded_data(row, url), rt.clock.now())
    else:
        url = signed_url(rt, upload.sha256)
    return FormUploadResponse(subscriptionSlug=row["slug"], spvSlug=row["spv_slug"], personId=row["person_id"],
                              subscriptionFormUrl=url, uploadedAt=row["form_uploaded_at"])


def store_funding(
    rt: Runtime, partner: Partner, spv_slug: str, person_id: str, upload: Upload,
    amount: str | None, currency: str | None, wire_reference: str | None,
) -> FundingUploadResponse:
    """Record the funding receipt and wire metadata (run inside ``rt.store.tx()``); the form must be on record."""
    problems = funding_field_errors(amount, currency, wire_reference)
    if problems:
        raise ValidationFailed(problems)
    assert amount is not None and currency is not None and wire_reference is not None
    content_type = _check_upload(rt, upload)
    row = _open_row(rt, partner.client_id, spv_slug, person_id)
    if not row["form_sha256"]:
        raise Conflict(f"subscription {row['slug']}: the signed subscription form is not on record yet; "
                       "upload it to .../forms before the funding receipt")
    unchanged = (row["funding_sha256"], row["funding_amount"], row["funding_currency"], row["wire_reference"]) == (
        upload.sha256, amount, currency, wire_reference)
    if not unchanged:
        _put_file(rt, upload, content_type)
        subscriptions.record_funding(rt, row["slug"], upload.sha256, amount, currency, wire_reference)
        row = subscriptions.holder_row(rt, partner.client_id, spv_slug, person_id)
        url = signed_url(rt, upload.sha256)
        events.emit(rt.store, rt.ids, partner.client_id, "funding_receipt.uploaded",
                    events.funding_uploaded_data(row, url), rt.clock.now())
        policy.after_funding_uploaded(rt, row["slug"])
    else:
        url = signed_url(rt, upload.sha256)
    return FundingUploadResponse(
        subscriptionSlug=row["slug"], spvSlug=row["spv_slug"], personId=row["person_id"], fundingReceiptUrl=url,
        amount=row["funding_amount"], currency=row["funding_currency"], wireReference=row["wire_reference"],
        uploadedAt=row["funding_uploaded_at"],
    )


def funding_field_errors(amount: str | None, currency: str | None, wire_reference: str | None) -> list[FieldError]:
    """What is wrong with the funding metadata (None = part absent); empty when all three are fine."""
    problems: list[FieldError] = []
    for path, value in (("amount", amount), ("currency", currency), ("wireReference", wire_reference)):
        if value is None:
            problems.append(FieldError(path, "required", f"{path} is required"))
    if amount is not None and not AMOUNT_RE.fullmatch(amount):
        problems.append(FieldError("amount", "pattern", "amount must be a decimal string like 50000.00 "
                                   "(digits, optionally a dot and 1-2 decimals)", amount))
    if currency is not None and not CURRENCY_RE.fullmatch(currency):
        problems.append(FieldError("currency", "format", "currency must be an ISO 4217 code like USD", currency))
    if wire_reference is not None and not 1 <= len(wire_reference) <= WIRE_REFERENCE_MAX:
        code = "required" if not wire_reference else "max_length"
        problems.append(FieldError("wireReference", code,
                                   f"wireReference must be 1-{WIRE_REFERENCE_MAX} characters", wire_reference))
    return problems


def signed_url(rt: Runtime, sha256: str) -> str:
    """A URL serving the stored file until ``now + file_url_ttl_seconds`` on the simulated clock."""
    expires = int((rt.clock.now() + timedelta(seconds=rt.settings.file_url_ttl_seconds)).timestamp())
    return f"{rt.settings.base_url}/_mock/files/{sha256}?expires={expires}&sig={_sign(rt, sha256, expires)}"


def verify_file_url(rt: Runtime, sha256: str, expires: str | None, sig: str | None) -> StoredFile:
    """The stored file behind a signed URL; 403 for a bad or expired signature, 404 if gone."""
    if not expires or not (expires.isascii() and expires.isdigit()) or not sig:
        raise Forbidden("file URL must carry expires=<unix seconds> and sig=<hex>: ask the API for a fresh URL")
    if not hmac.compare_digest(_sign(rt, sha256, int(expires)).encode(), sig.lower().encode()):
        raise Forbidden("file URL signature does not match")
    if int(expires) <= rt.clock.now().timestamp():
        raise Forbidden("file URL has expired: ask the API for a fresh URL")
    row = rt.store.one("SELECT rowid, content_type, size FROM files WHERE sha256 = ?", sha256)
    if row is None:
        raise NotFound(f"no stored file {sha256}")
    return StoredFile(row["content_type"], row["size"], row["rowid"])


async def file_chunks(store: Store, stored: StoredFile) -> AsyncIterator[bytes]:
    """The bytes of a stored file, a chunk at a time. The BLOB is opened per chunk, so no handle stays open while
    the response waits on a slow client (files are immutable: content-addressed, never updated in place)."""
    for offset in range(0, stored.size, CHUNK_BYTES):
        with store.blob("files", "data", stored.rowid) as blob:
            blob.seek(offset)
            chunk = blob.read(CHUNK_BYTES)
        yield chunk


def _check_upload(rt: Runtime, upload: Upload) -> str:
    return check_type(upload.declared_type, upload.head(),
                      sniffing=rt.settings.upload_sniffing)


def _open_row(rt: Runtime, client_id: str, spv_slug: str, person_id: str) -> Row:
    row = subscriptions.holder_row(rt, client_id, spv_slug, person_id)
    if row["status"] in subscriptions.TERMINAL:
        raise Conflict(f"subscription {row['slug']} is in a terminal status ({row['status']})")
    return row


def _put_file(rt: Runtime, upload: Upload, content_type: str) -> None:
    """Store the file once per content (run inside ``rt.store.tx()``): a zeroblob of its size, then its chunks."""
    if rt.store.one("SELECT 1 FROM files WHERE sha256 = ?", upload.sha256) is not None:
        return
    rowid = rt.store.run("INSERT INTO files (sha256, content_type, size, data) VALUES (?, ?, ?, zeroblob(?))",
                         upload.sha256, content_type, upload.size, upload.size)
    with rt.store.blob("files", "data", rowid, readonly=False) as blob:
        for chunk in upload.chunks():
            blob.write(chunk)


def _sign(rt: Runtime, sha256: str, expires: int) -> str:
    return hmac.new(rt.store.secret(_SECRET_KEY).encode(), f"{sha256}.{expires}".encode(), hashlib.sha256).hexdigest()
