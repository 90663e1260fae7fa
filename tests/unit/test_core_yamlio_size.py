"""check_document_size: the limit counts bytes, whether given text (multi-byte characters), bytes or a size."""

from __future__ import annotations

import pytest

from pipeline_engine.core.yamlio import MAX_DOCUMENT_BYTES, check_document_size
from pipeline_engine.errors import SpecError


def test_the_limit_itself_passes_and_one_byte_more_is_refused() -> None:
    check_document_size(MAX_DOCUMENT_BYTES, source="p.yaml")
    check_document_size(b"x" * MAX_DOCUMENT_BYTES, source="p.yaml")
    with pytest.raises(SpecError, match=r"^p.yaml: 16.0 MiB is over the 16 MiB limit"):
        check_document_size(MAX_DOCUMENT_BYTES + 1, source="p.yaml")


def test_multibyte_text_is_measured_in_bytes() -> None:
    text = "é" * (MAX_DOCUMENT_BYTES // 2 + 1)  # fewer characters than the limit, more bytes
    with pytest.raises(SpecError, match="m.json"):
        check_document_size(text, source="m.json")
    check_document_size("é" * (MAX_DOCUMENT_BYTES // 2), source="m.json")
