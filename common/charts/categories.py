"""How many distinct values a field takes in one view of a bound chart, for sizing it: a step per category
needs the number of categories, and the labels' lengths decide whether they are turned.

Exact for a result column (the policy's ``Rows`` counts it), for a fold's keys, and for a row number that a
field predicate cuts (``{"filter": {"field": "row", "lte": 30}}``); a time unit of ISO dates is counted on the
truncated dates. Anything else is bounded by the view's rows after its transforms, which the policy already
bounds, so a size derived from a count is bounded whatever the data holds.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

from common.charts.policy_transforms import Rows, apply_transforms

DEFAULT_MAXBINS = 10  # Vega-Lite's, for x and y
_RANKS = frozenset({"row_number", "rank", "dense_rank"})
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
# Distinct values a time unit of a date can take at most, and how an ISO date is truncated to it.
_UNIT_CAPS = {"month": 12, "quarter": 4, "day": 7, "date": 31, "hours": 24, "minutes": 60, "seconds": 60}
_UNIT_KEYS = {"year": lambda y, m, d: y, "yearquarter": lambda y, m, d: (y, (int(m) - 1) // 3),
              "yearmonth": lambda y, m, d: (y, m), "yearmonthdate": lambda y, m, d: (y, m, d),
              "month": lambda y, m, d: m, "quarter": lambda y, m, d: (int(m) - 1) // 3, "date": lambda y, m, d: d}


@dataclasses.dataclass(frozen=True)
class ViewData:
    """The rows one view draws: the bound rows, an upper bound of how many, and counts its transforms made."""

    rows: Rows
    values: Sequence[dict]
    tuples: int
    known: dict[str, int] = dataclasses.field(default_factory=dict)  # distinct values of derived fields
    numbered: frozenset[str] = frozenset()  # row numbers: one row per number
    created: frozenset[str] = frozenset()

    @classmethod
    def of(cls, column_names: Sequence[str], values: Sequence[dict], created: set[str]) -> ViewData:
        """The data at the top of a spec whose transforms create the names in ``created``."""
        return cls(Rows(column_names, values, created), values, len(values), created=frozenset(created))

    def after(self, transforms: Any) -> ViewData:
        """The data a view with these ``transform`` steps draws (the policy has checked them)."""
        if not isinstance(transforms, list):
            return self
        tuples, known, numbered = self.tuples, dict(self.known), set(self.numbered)
        for transform in transforms:
            if not isinstance(transform, dict):
                continue
            if "fold" in transform and isinstance(transform["fold"], list):
                names = transform.get("as") if isinstance(transform.get("as"), list) else ["key", "value"]
                known[str(names[0])] = len(transform["fold"])
            elif "window" in transform and not transform.get("groupby"):
                for step in transform["window"] if isinstance(transform["window"], list) else []:
                    if isinstance(step, dict) and step.get("op") in _RANKS and isinstance(step.get("as"), str):
                        known[step["as"]] = tuples
                        if step["op"] == "row_number":
                            numbered.add(step["as"])
            elif isinstance(transform.get("filter"), dict):
                tuples = _cut(transform["filter"], known, numbered, tuples)
            else:  # a transform that (re)defines a field makes what was known of it stale
                for name in _outputs(transform):
                    known.pop(name, None)
                    numbered.discard(name)
            tuples = apply_transforms([transform], "spec.transform", tuples, self.rows)
        return dataclasses.replace(self, tuples=tuples, known=known, numbered=frozenset(numbered))

    def count(self, definition: dict) -> int:
        """Distinct values the channel ``definition`` shows (at least 1)."""
        field = definition.get("field")
        bound = max(self.tuples, 1)
        if not isinstance(field, str):
            return bound
        if field in self.known:
            return max(min(self.known[field], bound), 1)
        binned = definition.get("bin")
        if binned:
            maxbins = binned.get("maxbins", DEFAULT_MAXBINS) if isinstance(binned, dict) else DEFAULT_MAXBINS
            return max(min(self.rows.distinct(field, bound), int(maxbins) + 1), 1)
        unit = _time_unit(definition.get("timeUnit"))
        if unit:
            return max(min(self.rows.distinct(field, bound), self._unit_count(field, unit)), 1)
        return max(self.rows.distinct(field, bound), 1)

    def labels(self, definition: dict) -> list[str] | None:
        """The category labels of a channel on a result column as it is, or None when they are not known."""
        field = definition.get("field")
        name = re.sub(r"\\(.)", r"\1", field) if isinstance(field, str) else None
        if (name is None or definition.get("bin") or definition.get("timeUnit") or definition.get("aggregate")
                or field in self.created or name in self.created or field in self.known):
            return None
        if not self.values or name not in self.values[0]:
            return None
        return list(dict.fromkeys("" if row.get(name) is None else str(row.get(name)) for row in self.values))

    def _unit_count(self, field: str, unit: str) -> int:
        name = re.sub(r"\\(.)", r"\1", field)
        key = _UNIT_KEYS.get(unit)
        cap = _UNIT_CAPS.get(unit, math.inf)
        if key is None or field in self.created or name in self.created:
            return int(min(cap, max(self.tuples, 1)))
        keys = set()
        for row in self.values:
            match = _ISO_DATE.match(str(row.get(name, "")))
            if match is None:
                return int(min(cap, max(self.tuples, 1)))  # not ISO dates: bounded only
            keys.add(key(*match.groups()))
        return len(keys)


def _outputs(transform: dict) -> list[str]:
    created = transform.get("as")
    names = [created] if isinstance(created, str) else created if isinstance(created, list) else []
    return [name for name in names if isinstance(name, str)]


def _time_unit(value: Any) -> str | None:
    unit = value.get("unit") if isinstance(value, dict) else value
    return unit.removeprefix("utc") if isinstance(unit, str) else None


def _cut(predicate: dict, known: dict[str, int], numbered: set[str], tuples: int) -> int:
    """Apply a field predicate on a rank: at most that many ranks (and, for a row number, rows) remain."""
    field, cap = predicate.get("field"), _cap(predicate)
    if field not in known or cap is None:
        return tuples
    known[field] = min(known[field], cap)
    return min(tuples, cap) if field in numbered else tuples


def _cap(predicate: dict) -> int | None:
    """How many whole numbers from 1 up a field predicate lets through, if it says."""
    lte, lt, bounds, one_of = (predicate.get(key) for key in ("lte", "lt", "range", "oneOf"))
    if _is_number(lte):
        return max(math.floor(lte), 0)
    if _is_number(lt):
        return max(math.ceil(lt) - 1, 0)
    if isinstance(bounds, list) and len(bounds) == 2 and _is_number(bounds[1]):
        return max(math.floor(bounds[1]), 0)
    return len(one_of) if isinstance(one_of, list) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
