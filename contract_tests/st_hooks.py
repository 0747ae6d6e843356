"""Schemathesis hooks: real file bytes for the upload operations' ``file`` parts.

The upload schemas declare ``encoding: {file: {contentType: "application/pdf, image/jpeg, image/png, image/webp"}}``;
registering a strategy per media type makes schemathesis send one of these tiny valid files (the repository's
``fixtures/``) with a matching part Content-Type, instead of random bytes the mock's magic-byte check answers 415 to.
Imported by ``test_schemathesis.py``; for the CLI, ``SCHEMATHESIS_HOOKS=contract_tests.st_hooks``.
"""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FILES = {
    "application/pdf": (FIXTURES / "signed-form.pdf").read_bytes(),
    "image/jpeg": (FIXTURES / "receipt.jpg").read_bytes(),
    "image/png": (FIXTURES / "receipt.png").read_bytes(),
    "image/webp": (FIXTURES / "receipt.webp").read_bytes(),
}

for _media_type, _data in FILES.items():
    schemathesis.openapi.media_type(_media_type, st.just(_data))

