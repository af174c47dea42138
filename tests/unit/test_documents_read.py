"""A documents-only answer's provenance names the documents whose text the model was given, and only those."""

from __future__ import annotations

from common.services.pipeline.domain_data import DOCUMENTS_TOTAL_CHARS, DomainData, documents_read, documents_text


def domain(*documents: tuple[str, str]) -> DomainData:
    return DomainData(tables=[], profiles=[], documents=list(documents),
                      versions={name: f"v-{name}" for name, _ in documents})


def test_each_document_with_text_is_given_and_named_with_its_version():
    data = domain(("a.pdf", "Revenue grew."), ("b.docx", "Costs fell."))
    assert documents_text(data) == "=== a.pdf ===\nRevenue grew.\n\n=== b.docx ===\nCosts fell."
    assert documents_read(data) == {"a.pdf": "v-a.pdf", "b.docx": "v-b.docx"}


def test_a_document_without_text_is_not_named_and_does_not_hide_the_next():
    data = domain(("scan.pdf", ""), ("b.docx", "Costs fell."))
    assert documents_text(data) == "=== b.docx ===\nCosts fell."
    assert documents_read(data) == {"b.docx": "v-b.docx"}


def test_a_document_left_out_by_the_budget_is_not_named():
    data = domain(*[(f"d{index}.pdf", "x" * DOCUMENTS_TOTAL_CHARS) for index in range(13)])
    given = documents_read(data)
    assert len(given) == 12 and "d12.pdf" not in given  # 12 shares of 1000 characters fill the budget
    assert all(f"=== {name} ===" in documents_text(data) for name in given)
    assert "=== d12.pdf ===" not in documents_text(data)
