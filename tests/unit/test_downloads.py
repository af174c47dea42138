"""A download's file name, from a question anyone may have typed, and its Content-Disposition header."""

from __future__ import annotations

import threading
import urllib.parse

import pytest

from common.downloads import MAX_NAME_CHARS, _once, attachment_name, content_disposition


@pytest.mark.parametrize(("title", "name"), [
    ("Compare revenue by region", "Compare revenue by region.csv"),
    ("What were sales in Q1/Q2? (EU: all)", "What were sales in Q1 Q2 (EU all).csv"),
    ('..\\..\\etc\\passwd', "etc passwd.csv"),
    ("  tabs\tand\nnewlines\r\n  ", "tabs and newlines.csv"),
    ("invoice\u202egpj.exe", "invoice gpj.exe.csv"),  # a right-to-left override cannot disguise the extension
    ("zero\u200bwidth\x00nul\x1bescape", "zero width nul escape.csv"),
    ("CON", "result CON.csv"), ("nul.txt", "result nul.txt.csv"), ("", "result.csv"), ("???", "result.csv"),
    ("...", "result.csv"), ("Umsätze nach Région", "Umsätze nach Région.csv"),
])
def test_a_question_becomes_a_safe_file_name(title, name):
    assert attachment_name(title, "csv") == name


def test_a_long_question_is_cut_at_a_word():
    title = "How did revenue per customer segment develop over the last eight quarters across every region we sell in"
    name = attachment_name(title, "xlsx")
    assert name == "How did revenue per customer segment develop over the last eight quarters across.xlsx"
    assert attachment_name(title.replace("across", "acrossing"), "csv") == \
        "How did revenue per customer segment develop over the last eight quarters.csv"
    assert len(name.removesuffix(".xlsx")) <= MAX_NAME_CHARS
    assert len(attachment_name("x" * 500, "csv")) == MAX_NAME_CHARS + len(".csv")


def test_an_ascii_name_is_a_plain_filename_and_any_other_adds_an_rfc_5987_filename_star():
    assert content_disposition("Revenue by region.csv") == 'attachment; filename="Revenue by region.csv"'
    header = content_disposition("Umsätze 東京 (2024).parquet")
    assert header == ('attachment; filename="Umsatze (2024).parquet"; '
                      "filename*=UTF-8''Ums%C3%A4tze%20%E6%9D%B1%E4%BA%AC%20%282024%29.parquet")
    assert urllib.parse.unquote(header.split("UTF-8''")[1]) == "Umsätze 東京 (2024).parquet"
    assert content_disposition("東京.csv") == \
        "attachment; filename=\"result.csv\"; filename*=UTF-8''%E6%9D%B1%E4%BA%AC.csv"


def test_a_slot_is_given_back_once_however_often_it_is_released():
    slot = threading.BoundedSemaphore(1)
    assert slot.acquire(timeout=0)
    release = _once(slot.release)
    release()
    release()  # the end of the file, then the close: a BoundedSemaphore would raise on a second release
    assert slot.acquire(timeout=0) and not slot.acquire(timeout=0)


@pytest.mark.parametrize("variable", ["RESULT_DOWNLOAD_MAX_ROWS", "RESULT_DOWNLOAD_MAX_BYTES",
                                      "RESULT_DOWNLOAD_TIMEOUT_SECONDS", "RESULT_DOWNLOAD_CONCURRENCY"])
def test_the_download_budget_must_be_positive(variable):
    from common.config import Settings
    from common.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({variable: "0"})
