"""The two upload operations (signed form, funding receipt) and the streaming multipart reader behind them.

The body is never buffered whole: a declared Content-Length over the cap is refused before anything is read, then
``request.stream()`` chunks feed a streaming ``python_multipart.MultipartParser`` whose callbacks count bytes, hash
the file part into a ``SpooledTemporaryFile`` (1 MiB in memory, then disk) and refuse with 413 the moment the file
part passes ``upload_limit_bytes``. Only a complete, well-formed body reaches the domain, as the spooled file.

Unknown parts are read and dropped (named in ``Zest-Mock-Warning``), or refused under ``--strict-fields``.
Request-level errors: a Content-Type that is not ``multipart/form-data`` with a boundary, malformed or truncated
multipart, repeated parts, unknown parts when strict, too many parts, a field over 1 KiB and a client that
disconnects all answer ``400 invalid_request`` (as every other endpoint answers a wrong body content type; 415
is kept for the file's own type). A missing part answers ``400 validation_error`` with one entry per missing part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from tempfile import SpooledTemporaryFile
from typing import Any

import python_multipart
from pydantic import BaseModel, ConfigDict, Field
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request

from mock_server.domain import uploads
from mock_server.errors import FieldError, InvalidRequest, PayloadTooLarge, ValidationFailed
from mock_server.http.common import errors
from mock_server.http.operations import Answer, Body, Call, Operation, Param
from mock_server.http.unknown_fields import ignored_fields
from mock_server.http.writes import Effect, Run
from mock_server.models import FormUploadResponse, FundingUploadResponse, PartnerErrorResponse, dump

MULTIPART_OVERHEAD = 16 * 1024  # boundaries, part headers and the small fields, on top of the file cap
FIELD_LIMIT = 1024
MAX_PARTS = 50  # the known parts, with room for the unknown ones a client may add
MAX_BOUNDARY = 70
SPOOL_IN_MEMORY = 1024 * 1024
FORM_PARTS = frozenset({"file"})
FUNDING_PARTS = frozenset({"file", "amount", "currency", "wireReference", "wire_reference"})
_BINARY: dict[str, Any] = {"format": "binary"}


class Body_uploadSubscriptionForm(BaseModel):  # the published component name
    model_config = ConfigDict(extra="forbid")
    file: str = Field(json_schema_extra=_BINARY, description="Signed form: PDF, JPEG, PNG or WEBP, at most 10 MiB")


class Body_uploadFundingReceipt(BaseModel):  # the published component name
    # schemathesis 4.32.5's examples phase labels the file part with the first listed type whatever its bytes;
    # contract_tests/test_schemathesis.py relabels it, so these examples stay.
    model_config = ConfigDict(extra="forbid")
    amount: str = Field(pattern=r"^[0-9]+(\.[0-9]{1,2})?$", examples=["50000.00"], description="Decimal string")
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["USD"], description="ISO 4217 code")
    wireReference: str = Field(min_length=1, max_length=200, examples=["ACME-WIRE-20260507-9921"],
                               description="Wire reference / message id; `wire_reference` is accepted as an alias")
    file: str = Field(json_schema_extra=_BINARY, description="Receipt: PDF, JPEG, PNG or WEBP, at most 10 MiB")


class StreamedForm:
    """Callbacks for ``MultipartParser``: small fields in memory, the one file part spooled and hashed."""

    def __init__(self, allowed: frozenset[str], file_limit: int, ignored: list[str] | None = None) -> None:
        """``ignored``: where unknown part names go (None: an unknown part is a 400)."""
        self.allowed, self.file_limit, self.ignored = allowed, file_limit, ignored
        self.fields: dict[str, str] = {}
        self.file: SpooledTemporaryFile[bytes] | None = None
        self.file_type, self.filename, self.file_size = "", "", 0
        self.ended = False
        self._hash = hashlib.sha256()
        self._parts = 0
        self._seen: set[str] = set()
        self._headers: dict[str, str] = {}
        self._header_name, self._header_value = bytearray(), bytearray()
        self._name: str | None = None
        self._value = bytearray()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value_data, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end, "on_end": self._end,
        }

    def upload(self) -> uploads.Upload | None:
        """The file part (at most ``file_limit`` bytes, still in its spool), or None when there was none."""
        if self.file is None:
            return None
        return uploads.Upload(self.file_type, self.file, self.file_size,
                              self._hash.hexdigest(), self.filename)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise InvalidRequest(f"multipart body has more than {MAX_PARTS} parts")
        self._headers, self._name, self._value = {}, None, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.decode("latin-1").strip().lower()] = self._header_value.decode("latin-1")
        self._header_name, self._header_value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get("content-disposition"))
        if disposition != b"form-data" or b"name" not in options:  # name="" is a part like any unknown one
            raise InvalidRequest("every multipart part needs Content-Disposition: form-data; name=\"...\"")
        name = _text(options[b"name"])
        if name not in self.allowed and self.ignored is None:
            raise InvalidRequest(f"unknown part {name!r}: this operation takes {', '.join(sorted(self.allowed))}")
        if name not in self.allowed:
            if name not in self.ignored:
                self.ignored.append(name)
            return  # its data is skipped: self._name stays None
        if name in self._seen:
            raise InvalidRequest(f"part {name!r} appears more than once")
        self._seen.add(name)
        self._name = name
        if name == "file":
            self._open_file(_text(options.get(b"filename", b"")))

    def _open_file(self, filename: str) -> None:
        if not filename:
            raise ValidationFailed([FieldError("file", "type", "file must be a file part: its Content-Disposition "
                                               "needs a filename")])
        self.filename = filename
        self.file_type = self._headers.get("content-type", "")
        self.file = SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name is None:  # an ignored part
            return
        chunk = data[start:end]
        if self._name == "file":
            assert self.file is not None
            self.file_size += len(chunk)
            if self.file_size > self.file_limit:
                raise PayloadTooLarge(f"file is over the upload limit of {self.file_limit} bytes")
            self._hash.update(chunk)
            self.file.write(chunk)
            return
        self._value += chunk
        if len(self._value) > FIELD_LIMIT:
            raise InvalidRequest(f"part {self._name!r} is over {FIELD_LIMIT} bytes")

    def _part_end(self) -> None:
        if self._name is not None and self._name != "file":
            try:
                self.fields[self._name] = self._value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidRequest(f"part {self._name!r} is not UTF-8 text") from exc

    def _end(self) -> None:
        self.ended = True


async def read_multipart(request: Request, file_limit: int, allowed: frozenset[str],
                         ignored: list[str] | None = None) -> StreamedForm:
    """Parse the body as it arrives (unknown parts into ``ignored``, or refused without it); the caller closes the
    returned form."""
    body_limit = file_limit + MULTIPART_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > body_limit:
        raise PayloadTooLarge(f"request body of {declared} bytes is over the upload limit of {file_limit} bytes "
                              "for the file")
    boundary = _boundary(request.headers.get("content-type"))
    form = StreamedForm(allowed, file_limit, ignored)
    try:
        await _feed(request, form, boundary, body_limit)
    except BaseException:
        form.close()
        raise
    return form


async def _feed(request: Request, form: StreamedForm, boundary: bytes, body_limit: int) -> None:
    received = 0
    try:
        parser = python_multipart.MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise PayloadTooLarge(f"request body is over {body_limit} bytes")
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidRequest(f"malformed multipart body: {exc}") from exc
    except ClientDisconnect as exc:
        raise InvalidRequest("client disconnected before the body was complete") from exc
    if not form.ended:
        raise InvalidRequest("multipart body is truncated: the closing boundary never came")


def _boundary(content_type: str | None) -> bytes:
    media_type, params = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        shown = media_type.decode("latin-1") or "absent"
        raise InvalidRequest(f"Content-Type must be multipart/form-data, not {shown!r}")
    boundary = params.get(b"boundary", b"")
    if not 1 <= len(boundary) <= MAX_BOUNDARY:
        raise InvalidRequest(f"Content-Type multipart/form-data needs a boundary parameter of 1-{MAX_BOUNDARY} "
                             "characters (RFC 2046)")
    return boundary


def _text(raw: bytes) -> str:
    # parse_options_header hands back latin-1 bytes of the header text; clients send UTF-8 names.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _effect(form: StreamedForm, prepare: Callable[[uploads.Upload | None, dict[str, str]], Run]) -> Effect:
    """The effect ``prepare`` makes of the parts once it has judged them; the file's spool stays open until the
    effect has run, and is closed at once when ``prepare`` refuses."""
    try:
        return Effect(prepare(form.upload(), form.fields), close=form.close)
    except BaseException:
        form.close()
        raise


def _missing_file() -> FieldError:
    return FieldError("file", "required", "file is required: a part named file with a filename")


async def upload_form(call: Call) -> Effect:
    form = await read_multipart(call.request, call.rt.settings.upload_limit_bytes, FORM_PARTS, ignored_fields(call))
    spv_slug, person_id = call.request.path_params["spv_slug"], call.request.path_params["person_id"]

    def prepare(upload: uploads.Upload | None, _: dict[str, str]) -> Run:
        if upload is None:
            raise ValidationFailed([_missing_file()])
        return lambda: (201, dump(uploads.store_form(call.rt, call.partner, spv_slug, person_id, upload)))

    return _effect(form, prepare)


async def upload_funding(call: Call) -> Effect:
    form = await read_multipart(call.request, call.rt.settings.upload_limit_bytes, FUNDING_PARTS,
                                ignored_fields(call))
    spv_slug, person_id = call.request.path_params["spv_slug"], call.request.path_params["person_id"]

    def prepare(upload: uploads.Upload | None, fields: dict[str, str]) -> Run:
        if "wireReference" in fields and "wire_reference" in fields:
            raise InvalidRequest("send wireReference or its alias wire_reference, not both")
        wire_reference = fields.get("wireReference", fields.get("wire_reference"))
        amount, currency = fields.get("amount"), fields.get("currency")
        if upload is None:
            raise ValidationFailed([_missing_file(), *uploads.funding_field_errors(amount, currency,
                                                                                    wire_reference)])
        return lambda: (201, dump(uploads.store_funding(call.rt, call.partner, spv_slug, person_id, upload, amount,
                                                        currency, wire_reference)))

    return _effect(form, prepare)


_PATH_PARAMS = (
    Param("spv_slug", "path", {"type": "string", "title": "Spv Slug"}, required=True,
          description="The SPV's vehicle slug (materialisedRefs.vehicleSlug)"),
    Param("person_id", "path", {"type": "string", "title": "Person Id"}, required=True,
          description="The investor's zestPersonId"),
)
_ENCODING = {"file": {"contentType": ", ".join(uploads.ACCEPTED_TYPES)}}


def _answers(created: type[BaseModel], conflict: str) -> dict[int, Answer]:
    return {
        201: Answer("Stored; the matching webhook is queued", created),
        **errors(400, 401, 403),
        404: Answer("SPV or person not found, or the person has no subscription on the SPV", PartnerErrorResponse),
        409: Answer(conflict, PartnerErrorResponse),
        **errors(413, 415),
    }


OPERATIONS: list[Operation] = [
    Operation(
        method="POST", path="/v1/spvs/{spv_slug}/subscription/{person_id}/forms",
        operation_id="uploadSubscriptionForm", tag="Subscription Forms", summary="Upload signed subscription form",
        description="Uploads the signed subscription form of a partner-managed subscription: multipart/form-data "
                    "with one `file` part, at most 10 MiB, PDF, JPEG, PNG or WEBP. Content-addressed (no "
                    "Idempotency-Key): re-sending identical bytes changes nothing. Emits "
                    "`signed_subscription_form.uploaded`.",
        handler=upload_form, secured=True, provisioned=True, transaction=True, params=_PATH_PARAMS,
        body=Body("multipart/form-data", Body_uploadSubscriptionForm, encoding=_ENCODING),
        answers=_answers(FormUploadResponse, "Bid is in a terminal status"),
        links={201: {"UploadFundingReceipt": {
            "operationId": "uploadFundingReceipt",
            "parameters": {"spv_slug": "$response.body#/spvSlug", "person_id": "$response.body#/personId"},
        }}},
    ),
    Operation(
        method="POST", path="/v1/spvs/{spv_slug}/subscription/{person_id}/fundings",
        operation_id="uploadFundingReceipt", tag="Subscription Fundings", summary="Upload funding receipt",
        description="Uploads a wire-transfer receipt with its funding metadata (`amount`, `currency`, "
                    "`wireReference`; `wire_reference` is accepted as an alias). The signed subscription form must "
                    "already be on record, otherwise 409. Emits `funding_receipt.uploaded`.",
        handler=upload_funding, secured=True, provisioned=True, transaction=True, params=_PATH_PARAMS,
        body=Body("multipart/form-data", Body_uploadFundingReceipt, encoding=_ENCODING),
        answers=_answers(FundingUploadResponse, "Form not on record yet, or terminal status"),
    ),
]
