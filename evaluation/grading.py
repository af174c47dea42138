"""Is an answer correct? The rule, applied to what ``GET /api/v1/queries/{id}`` returned.

Data questions: the answer's result table (``answer.table``) must hold the reference result.
- Columns: every reference column is found in a distinct answer column; names are ignored and extra answer
  columns are allowed (an answer may add a share or a count).
- Rows: one answer row per reference row, in any order, and no other rows (an unrequested total row or a
  missing filter is wrong). For a ranking (``ordered``) the answer's first rows are the reference's, in
  order; later rows are allowed (a full ranking still answers "top 3").
- Values: numbers match within 0.5% relative, or within the rounding the answer shows (25.3 for 25.34; one
  decimal shown allows 0.05). Numbers in text ("1,234.50", "25%") count as numbers. Dates match at day
  precision whatever their form ("2024-03", "2024-03-01", "2024-03-01T00:00:00", "March 2024"); "2024-Q2" or
  "Q2 2024" is the quarter's first day; a bare "Q2" is 2 and a bare "March" is 3. Other text matches
  case-insensitively, trimmed.
- ``share`` cases accept a percentage as a fraction too (0.253 for 25.3).
A case may list several references (shapes of a fair answer); matching any one is correct.

Small talk and out-of-scope: correct when ``answer.scope`` is the expected scope. Documents: correct when the
answer's text contains every expected phrase (a number as a whole number: "30" is not found in "300").
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import re
from typing import Any

from evaluation.cases import Case
from evaluation.reference import Table

REL_TOLERANCE = 0.005
MAX_ASSIGNMENTS = 20_000  # column assignments tried per reference before giving up (wide, repetitive answers)
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
# Matched against lower-cased text: "2024-03-01T00:00:00Z" arrives as "2024-03-01t00:00:00z".
_DATE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?(?:[ t]00:00(?::00(?:\.0+)?)?(?:z|[+-]00:?00)?)?$")
_YEAR_QUARTER = re.compile(r"^(?:(\d{4})\s*-?\s*q([1-4])|q([1-4])\s*-?\s*(\d{4}))$")
_QUARTER = re.compile(r"^q([1-4])$")
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                "november", "december")
_MONTH = re.compile(r"^(?:([a-z]{3,9})\.?,?\s*(\d{4})?|(\d{4})\s*-?\s*([a-z]{3,9}))$")


def grade(case: Case, view: dict[str, Any], references: list[Table]) -> tuple[bool, str]:
    """Return (correct, why not) for one finished job view."""
    if view.get("status") != "succeeded":
        error = view.get("error") or {}
        return False, f"job {view.get('status')}: {error.get('code', '')} {error.get('message', '')}".strip()
    answer = view.get("answer") or {}
    if case.kind == "scope":
        found = answer.get("scope")
        return (True, "") if found == case.scope else (False, f"scope {found}, expected {case.scope}")
    if case.kind == "document":
        return grade_text(answer.get("answer_markdown") or "", case.expect_text)
    if answer.get("scope", "data_question") != "data_question":
        return False, f"answered as {answer.get('scope')}, not as a data question"
    table = answer.get("table")
    if not table:
        return False, "the answer has no result table"
    columns = [column["name"] if isinstance(column, dict) else str(column) for column in table.get("columns", [])]
    rows = [tuple(row.get(name) for name in columns) if isinstance(row, dict) else tuple(row)
            for row in table.get("rows", [])]
    if table.get("truncated") and not case.ordered:  # a ranking's first rows are all a ranking needs
        return False, f"the answer's table was cut ({table.get('row_count')} rows)"
    reasons = []
    for reference in references:
        correct, reason = match_table(reference[1], rows, ordered=case.ordered, share=case.share)
        if correct:
            return True, ""
        reasons.append(reason)
    more = f" (and {len(references) - 1} other accepted shape(s))" if len(references) > 1 else ""
    return False, reasons[0] + more


def grade_text(text: str, expected: tuple[str, ...]) -> tuple[bool, str]:
    """Correct when ``text`` contains every expected phrase (numbers as whole numbers)."""
    flat = " ".join(text.lower().split())
    missing = [phrase for phrase in expected if not re.search(
        rf"(?<![\d.]){re.escape(phrase.lower())}(?![\d])" if _NUMBER.match(phrase) else re.escape(phrase.lower()),
        flat)]
    return (not missing), (f"the answer does not mention {', '.join(repr(m) for m in missing)}" if missing else "")


def match_table(reference: list[tuple], answer: list[tuple], *, ordered: bool = False,
                share: bool = False) -> tuple[bool, str]:
    """Whether ``answer`` rows hold the ``reference`` rows (see the module's rule); else why not."""
    if (len(answer) < len(reference)) if ordered else (len(answer) != len(reference)):
        return False, f"{len(answer)} rows, expected {len(reference)}{' or more' if ordered else ''}"
    if not reference:
        return True, ""
    answer = answer[:len(reference)] if ordered else answer
    width = len(reference[0])
    if not answer or len(answer[0]) < width:
        return False, f"{len(answer[0]) if answer else 0} columns, expected at least {width}"
    ref = [[canonical(value) for value in row] for row in reference]
    ans = [[canonical(value) for value in row] for row in answer]
    candidates = [[j for j in range(len(ans[0])) if _column_matches(ref, ans, i, j, ordered, share)]
                  for i in range(width)]
    for i, found in enumerate(candidates):
        if not found:
            sample = ", ".join(_show(row[i]) for row in reference[:3]) + (", ..." if len(ref) > 3 else "")
            first = ", ".join(_show(value) for value in answer[0])
            return False, f"no answer column holds reference column {i + 1} ({sample}); the answer starts ({first})"
    tried = 0
    for assignment in itertools.product(*candidates):
        if len(set(assignment)) < width:
            continue
        tried += 1
        if tried > MAX_ASSIGNMENTS:
            break
        if _rows_match(ref, ans, assignment, ordered, share):
            return True, ""
    return False, "every reference column is there, but no rows line up" + (" in order" if ordered else "")


def canonical(value: Any) -> Any:
    """A value as the rule compares it: (float, decimals shown), a date string, text, or None."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float | decimal.Decimal):
        return _number(float(value), _decimals(repr(float(value)) if isinstance(value, float) else str(value)))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = " ".join(str(value).split()).lower()
    if match := _DATE.match(text):
        return f"{match[1]}-{match[2]}-{match[3] or '01'}"
    if match := _YEAR_QUARTER.match(text):
        year, quarter = (match[1], match[2]) if match[1] else (match[4], match[3])
        return f"{year}-{3 * int(quarter) - 2:02d}-01"
    if match := _QUARTER.match(text):
        return _number(float(match[1]), 0)
    if (month := _month(text)) is not None:
        return month
    stripped = text.replace(",", "").replace("$", "").replace("%", "").replace("€", "").strip()
    if _NUMBER.match(stripped):
        return _number(float(stripped), _decimals(stripped))
    return text


def _month(text: str) -> Any:
    """"March 2024", "Mar 2024" or "2024 March" as the month's first day; a bare "March" as 3; else None."""
    match = _MONTH.match(text)
    if not match:
        return None
    word, year = (match[1], match[2]) if match[1] else (match[4], match[3])
    number = next((n for n, name in enumerate(_MONTH_NAMES, 1) if name.startswith(word) and len(word) >= 3), None)
    if number is None or word not in (_MONTH_NAMES[number - 1], _MONTH_NAMES[number - 1][:3], "sept"):
        return None
    return f"{year}-{number:02d}-01" if year else _number(float(number), 0)


def numbers_match(reference: float, answer: float, decimals_shown: int, *, share: bool = False) -> bool:
    """Whether ``answer`` (showing ``decimals_shown`` decimals) is ``reference`` within the tolerance."""
    scales = (1.0, 100.0) if share else (1.0,)
    for scale in scales:
        value, rounding = answer * scale, 0.5 * 10.0 ** -decimals_shown * scale if decimals_shown >= 1 else 0.0
        if abs(value - reference) <= max(REL_TOLERANCE * abs(reference), rounding) + 1e-9:
            return True
    return False


def _number(value: float, decimals: int) -> tuple[str, float, int]:
    return ("n", value, decimals)


def _decimals(text: str) -> int:
    """Decimals an answer shows; a float's ".0" shows none (1235.0 is a whole number)."""
    if "e" in text.lower():
        return 12
    fraction = text.split(".", 1)[1] if "." in text else ""
    return 0 if fraction.strip("0") == "" else len(fraction)


def _same(reference: Any, answer: Any, share: bool) -> bool:
    if isinstance(reference, tuple) and isinstance(answer, tuple):
        return numbers_match(reference[1], answer[1], answer[2], share=share)
    return reference == answer


def _column_matches(ref: list[list], ans: list[list], i: int, j: int, ordered: bool, share: bool) -> bool:
    """A cheap necessary test: column j holds column i's values (as a multiset, or in order)."""
    if ordered:
        return all(_same(r[i], a[j], share) for r, a in zip(ref, ans, strict=True))
    left = [a[j] for a in ans]
    for r in ref:
        hit = next((k for k, value in enumerate(left) if _same(r[i], value, share)), None)
        if hit is None:
            return False
        left.pop(hit)
    return True


def _rows_match(ref: list[list], ans: list[list], assignment: tuple[int, ...], ordered: bool, share: bool) -> bool:
    def fits(r: list, a: list) -> bool:
        return all(_same(r[i], a[j], share) for i, j in enumerate(assignment))

    if ordered:
        return all(fits(r, a) for r, a in zip(ref, ans, strict=True))
    return _perfect_matching([[k for k, a in enumerate(ans) if fits(r, a)] for r in ref], len(ans))


def _perfect_matching(options: list[list[int]], size: int) -> bool:
    """Whether every reference row gets its own answer row (Kuhn's augmenting paths; tolerance breaks sorting)."""
    owner: list[int | None] = [None] * size

    def claim(row: int, seen: set[int]) -> bool:
        for k in options[row]:
            if k not in seen:
                seen.add(k)
                if owner[k] is None or claim(owner[k], seen):
                    owner[k] = row
                    return True
        return False

    return all(claim(row, set()) for row in range(len(options)))


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)

