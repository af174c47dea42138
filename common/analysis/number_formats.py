"""Numbers written for people, read as numbers: decimal commas and thousands separators (``1.234,56``,
``1 234,56``, ``1'234.56``, ``1,234.56``).

polars reads plain numbers itself; a column it had to keep as text may still hold numbers in one of these
formats. It becomes numeric only when one format fits every non-empty value of the whole column and the
column proves which format it is, because some values read two ways: ``1.200`` is 1.2, 1200 or a version, and
``1,200`` is 1.2 or 1200. So a dot- or comma-grouped column needs a value with a decimal part in the other
mark (``1.200`` beside ``5,50``), except that where commas delimit the fields a bare decimal comma (``1,5``)
is never read, and so ``1,200`` is 1200 there; a column that fits two formats (``1,200`` beside ``1.200``) or
none stays text, with a warning.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

# Rows of each text column looked at to pick the columns worth checking whole.
SAMPLE_ROWS = 1000
_SEPARATORS = {".": r"\.", ",": ",", "'": "'", " ": "[ \u00a0\u202f]"}  # " ": a space, no-break or narrow
_MARKS = {",": ",", ".": r"\."}
_PLAIN_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAX_INTEGER_DIGITS = 18  # every 18-digit number fits in an Int64
_MAX_SAMPLED_CHARS = 64  # longer than any number: the sample's regexes never walk a long text cell


@dataclass(frozen=True)
class NumberFormat:
    decimal: str  # the decimal mark, "," or "."
    group: str  # the thousands separator: ".", ",", "'" or " " (any of three spaces); "" for none

    def pattern(self) -> str:
        """The regex a value in this format matches in full."""
        whole = "0|[1-9][0-9]*"
        if self.group:
            whole += f"|[1-9][0-9]{{0,2}}(?:{_SEPARATORS[self.group]}[0-9]{{3}})+"
        return f"[+-]?(?:{whole})(?:{_MARKS[self.decimal]}[0-9]+)?"

    def proven_by(self, grouped: int, decimals: int, comma_delimited: bool) -> bool:
        """Whether values with a separator (``grouped``) and a decimal part (``decimals``) rule out other readings."""
        if not self.group:
            return decimals > 0
        if self.group == "," and comma_delimited:  # where commas delimit, 1,200 is never read as 1.2
            return grouped > 0
        if self.group in ".,":  # 1.200 alone is also 1.2 (or a version); 1,200 alone is also 1.2
            return grouped > 0 and decimals > 0
        # Space- or apostrophe-grouped integers read the same either way: the decimal-comma format takes them.
        return grouped > 0 and (decimals > 0 or self.decimal == ",")

    def example(self, decimals: bool) -> str:
        """How 1234.56 (or 1234) is written in this format."""
        return (f"1{self.group}234" if self.group else "1234") + (f"{self.decimal}56" if decimals else "")

    def expression(self, name: str, integers: bool) -> pl.Expr:
        """The column ``name`` read as numbers in this format (blank values become null)."""
        import polars as pl

        text = pl.col(name).str.strip_chars()
        text = pl.when(text != "").then(text)
        if self.group:
            text = text.str.replace_all(_SEPARATORS[self.group], "")
        if self.decimal == ",":
            text = text.str.replace(",", ".", literal=True)
        return text.cast(pl.Int64 if integers else pl.Float64).alias(name)


def number_formats(comma_delimited: bool) -> list[NumberFormat]:
    """Every format read; the bare decimal comma only where commas do not delimit the fields."""
    grouped = [NumberFormat(",", group) for group in ".' "] + [NumberFormat(".", group) for group in ",' "]
    return grouped if comma_delimited else [NumberFormat(",", ""), *grouped]


def read_formatted_numbers(parquet_path: str, *, comma_delimited: bool) -> list[str]:
    """Turn the text columns of the Parquet file that hold numbers in one format into numbers, in place.

    Return one warning per format read (naming its columns) and one per column left as text although most
    of its values are such numbers. Two passes over the candidate columns: one counts the values holding each
    mark (cheap), the other checks only the formats whose marks occur against every value.
    """
    import polars as pl

    formats = number_formats(comma_delimited)
    frame = pl.scan_parquet(parquet_path)
    texts = [name for name, dtype in frame.collect_schema().items() if dtype == pl.String]
    columns = _candidate_columns(frame.select(texts).head(SAMPLE_ROWS).collect(), formats) if texts else []
    if not columns:
        return []
    stripped = frame.select(pl.col(columns).str.strip_chars())  # once: each count would strip again
    marks = _counts(stripped, {name: _mark_counts(name) for name in columns})
    tried = {name: [fmt for fmt in formats if marks[name][fmt.group or fmt.decimal]] for name in columns}
    fits = _counts(stripped, {name: {fmt: pl.col(name).str.contains(f"^(?:{fmt.pattern()})$").sum()
                                     for fmt in tried[name]} for name in columns if tried[name]})
    read: dict[str, list[str]] = {}
    expressions, warnings = [], []
    for name in columns:
        counts = marks[name]
        fmt, decimals, warning = _verdict(name, counts, fits.get(name, {}), comma_delimited)
        if fmt is not None:
            integers = not decimals and (counts["longest"] <= _MAX_INTEGER_DIGITS or _fit_int64(frame, name))
            read.setdefault(f"{fmt.example(not integers)} read as {1234 if integers else 1234.56}", []).append(name)
            expressions.append(fmt.expression(name, integers))
        elif warning:
            warnings.append(warning)
    if expressions:
        _rewrite(frame, expressions, parquet_path)
    return [f"numbers written like {how} in column(s) {', '.join(map(repr, names))}"
            for how, names in read.items()] + warnings


def _verdict(name: str, counts: dict[str, int], fits: dict[NumberFormat, int],
             comma_delimited: bool) -> tuple[NumberFormat | None, bool, str | None]:
    """The one proven format every value fits and whether it has decimals, or else a warning (or none)."""
    values = counts["values"]
    # Among values that all fit a format, those holding its separator are grouped, those holding its mark decimal.
    proven = [(fmt, fitting, counts[fmt.decimal] > 0) for fmt, fitting in fits.items()
              if fmt.proven_by(counts[fmt.group] if fmt.group else 0, counts[fmt.decimal], comma_delimited)]
    whole = [(fmt, decimals) for fmt, fitting, decimals in proven if fitting == values]
    if len(whole) == 1:
        return *whole[0], None
    if whole:
        ways = " or ".join(fmt.example(decimals) for fmt, decimals in whole)
        return None, False, f"column {name!r} kept as text: its numbers read two ways ({ways})"
    if proven and 2 * sum(fitting for _, fitting, _ in proven) >= values:  # mostly such numbers: say why not
        fmt, fitting, decimals = max(proven, key=lambda item: item[1])
        return None, False, (f"column {name!r} kept as text: {values - fitting:,} of {values:,} values are not "
                             f"numbers written like {fmt.example(decimals)}")
    return None, False, None


def _candidate_columns(sample: pl.DataFrame, formats: list[NumberFormat]) -> list[str]:
    """The text columns whose sample holds a value (other than a plain integer) in one of ``formats``."""
    pattern = re.compile("|".join(f"(?:{fmt.pattern()})" for fmt in formats))
    columns = []
    for series in sample.iter_columns():
        values = {value.strip() for value in series.drop_nulls() if len(value) <= _MAX_SAMPLED_CHARS}
        if any(pattern.fullmatch(value) and not _PLAIN_INTEGER.fullmatch(value) for value in values):
            columns.append(series.name)
    return columns


def _mark_counts(name: str) -> dict[str, pl.Expr]:
    """The (stripped) column's non-empty values, its longest value, and how many values hold each mark."""
    import polars as pl

    text = pl.col(name)
    counts = {"values": (text.str.len_chars() > 0).sum(), "longest": text.str.len_chars().max().fill_null(0),
              " ": text.str.contains(_SEPARATORS[" "]).sum()}
    return counts | {mark: text.str.contains(mark, literal=True).sum() for mark in ".,'"}


def _counts(frame: pl.LazyFrame, wanted: dict[str, dict[Any, pl.Expr]]) -> dict[str, dict[Any, int]]:
    """Evaluate every column's named counts in one streaming pass over the frame."""
    flat = [(name, key, expression) for name, expressions in wanted.items() for key, expression in expressions.items()]
    if not flat:
        return {}
    row = frame.select([expression.alias(str(index)) for index, (_, _, expression) in enumerate(flat)]) \
        .collect(engine="streaming").row(0)
    counts: dict[str, dict[Any, int]] = {name: {} for name in wanted}
    for (name, key, _), value in zip(flat, row, strict=True):
        counts[name][key] = value or 0
    return counts


def _fit_int64(frame: pl.LazyFrame, name: str) -> bool:
    """Whether no value of the column has more digits than an Int64 holds (counted only for long values)."""
    import polars as pl

    digits = frame.select(pl.col(name).str.count_matches("[0-9]").max()).collect(engine="streaming").item()
    return (digits or 0) <= _MAX_INTEGER_DIGITS


def _rewrite(frame: pl.LazyFrame, expressions: list[pl.Expr], parquet_path: str) -> None:
    converted = f"{parquet_path}.numbers"
    try:
        frame.with_columns(expressions).sink_parquet(converted)
        os.replace(converted, parquet_path)
    finally:
        if os.path.exists(converted):
            os.remove(converted)
