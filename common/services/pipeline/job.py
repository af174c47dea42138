"""A question's job, typed: what the request asked, the plan, the context the agents read, the result, the
chart and the answer, each a field a stage reads as ``job.result.columns``.

One codec (``QueryJob.from_record`` / ``QueryJob.to_data``) stores it in the metadata store as the JSON
object jobs have always been stored as, so a job written before this module existed still loads, and a
field a later version adds is a new optional attribute (absent in old jobs, default here). Fields that are
None are not stored, except in the parts that always stored them (the request, the answer).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, TypeVar

from common.metadata import Record

# An older version had an "analyze" stage between visualize and compile; its jobs still load (their
# stages are stored by name), and the answer now holds what it wrote.
STAGES = ("plan", "manipulate", "visualize", "compile")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})

T = TypeVar("T")


@dataclasses.dataclass
class StageState:
    state: str = "pending"  # pending, running, done, skipped, failed, cancelled
    claim: str | None = None  # who runs it (a token per claim), so a second delivery cannot store twice
    started_at: str | None = None
    finished_at: str | None = None
    lease_until: str | None = None  # a running claim past this time may be taken over


@dataclasses.dataclass
class Usage:
    calls: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # one record per model call
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, calls: list[dict[str, Any]]) -> None:
        """Count these model calls in."""
        for call in calls:
            self.calls.append(call)
            self.prompt_tokens += int(call.get("prompt_tokens") or 0)
            self.completion_tokens += int(call.get("completion_tokens") or 0)
            self.cost_usd = round(self.cost_usd + float(call.get("cost_usd") or 0.0), 8)

    def summary(self) -> dict[str, Any]:
        """Calls (skipped fallbacks not counted), tokens and cost."""
        return {"calls": len([call for call in self.calls if call.get("error") != "skipped"]),
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": self.cost_usd}


@dataclasses.dataclass
class JobRequest:
    """What the job keeps of the request: never its key (that is sealed in ``QueryJob.secrets``)."""

    model_id: str
    datasets: list[str] = dataclasses.field(default_factory=list)  # empty: every dataset of the domain
    pg_tokens: list[str] = dataclasses.field(default_factory=list)
    include_insight: bool = True
    visual_hint: str | None = None
    api_base: str | None = None
    model_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    answer_key: str = ""  # where the answer is cached (see answer_cache)


@dataclasses.dataclass
class JobContext:
    """What the agents are told, gathered once at plan time (bounded text, never rows)."""

    tables: str = "(none)"
    attachments: str = "(none)"
    turns: str = "(none)"
    previous_result: str = "(none)"
    # dataset -> version of what the question may read (documents only: the documents given to the model)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    documents: str = ""
    pg_tables: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # Postgres tables read at plan time
    config: dict[str, Any] = dataclasses.field(default_factory=dict)  # prompt_values, model_overrides


@dataclasses.dataclass
class Plan:
    """The planner's decision: scope, what runs, and for a data question its SQL, chart title and answer brief."""

    scope: str = "data_question"  # data_question, small_talk, out_of_scope
    mode: str | None = None  # "tables" or "documents" (a documents-only domain)
    need_manipulator: bool = False
    need_visualizer: bool = False
    need_analyzer: bool = False
    visual_hint: str = "auto"
    reason: str = ""
    tasks: dict[str, str] = dataclasses.field(default_factory=dict)  # sql, chart_title, answer_brief


@dataclasses.dataclass
class Result:
    """The result table: its rows are in the blob store (``key``), or carried over from the previous answer."""

    sql: str
    columns: list[dict[str, Any]]
    row_count: int
    truncated: bool = False
    elapsed_ms: float | None = None
    tables: dict[str, str] = dataclasses.field(default_factory=dict)  # SQL name -> table read
    # What the SQL read, each {table_name, dataset, table, sheet, version}: the answer's provenance (None in a
    # job stored before reads were described).
    read: list[dict[str, Any]] | None = None
    engine: str | None = None  # duckdb, or postgres when pushed down
    key: str | None = None
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # rejected SQL and why
    rows: list[dict[str, Any]] | None = None  # only when reused
    reused: bool = False


@dataclasses.dataclass
class ChartRef:
    chart_id: str
    kind: str
    title: str


@dataclasses.dataclass
class Answer:
    """The answer as the API returns it (chart URLs are signed again on every read)."""

    answer_markdown: str
    answer_html: str
    scope: str = "data_question"
    chart: dict[str, Any] | None = None
    table: dict[str, Any] | None = None
    sql: str | None = None
    plan_explainer: str = ""
    unverified_numbers: list[Any] = dataclasses.field(default_factory=list)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    cached: bool = False  # answered from the answer cache

    def to_data(self) -> dict[str, Any]:
        data = _encode(self)
        if not self.cached:
            del data["cached"]
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Answer:
        return _decode(cls, data)


@dataclasses.dataclass
class QueryJob:
    query_id: str
    session_id: str
    domain: str
    prompt: str
    request: JobRequest
    created: str
    status: str = "queued"  # queued, running, then one of TERMINAL
    cancel_requested: bool = False
    finished: str | None = None
    stages: dict[str, StageState] = dataclasses.field(
        default_factory=lambda: {stage: StageState() for stage in STAGES})
    usage: Usage = dataclasses.field(default_factory=Usage)
    secrets: dict[str, str] | None = None  # the request's sealed key, dropped when the job ends
    error: dict[str, Any] | None = None  # code, message, status of a failed job
    context: JobContext | None = None
    plan: Plan | None = None
    plan_explainer: str = ""
    result: Result | None = None
    chart: ChartRef | None = None
    answer: Answer | None = None
    # From the record, not stored in it.
    created_at: dt.datetime | None = dataclasses.field(default=None, compare=False)
    updated_at: dt.datetime | None = dataclasses.field(default=None, compare=False)
    revision: int = dataclasses.field(default=0, compare=False)  # grows with every write of the job

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    def to_data(self) -> dict[str, Any]:
        """The JSON object the metadata store keeps."""
        data = _encode(self)
        for name in _FROM_RECORD:
            data.pop(name, None)
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> QueryJob:
        return _decode(cls, data)

    @classmethod
    def from_record(cls, record: Record) -> QueryJob:
        """The job a metadata record holds, with the record's times."""
        job = cls.from_data(record.data)
        job.created_at, job.updated_at, job.revision = record.created_at, record.updated_at, record.revision
        return job


_FROM_RECORD = ("created_at", "updated_at", "revision")
# Parts whose stored form has always named every field, "visual_hint": null included.
_KEEPS_NONE = frozenset({JobRequest, Answer})
# Which fields hold which nested part; every other field is plain JSON.
_NESTED: dict[type, dict[str, type]] = {
    QueryJob: {"request": JobRequest, "usage": Usage, "context": JobContext, "plan": Plan, "result": Result,
               "chart": ChartRef, "answer": Answer},
}


def _encode(value: Any, *, keep_none: bool = False) -> dict[str, Any]:
    data = {}
    keep_none = keep_none or type(value) in _KEEPS_NONE
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if item is None and not keep_none:
            continue
        if isinstance(item, Answer):
            item = item.to_data()
        elif dataclasses.is_dataclass(item):
            item = _encode(item)
        elif field.name == "stages":
            item = {name: _encode(state) for name, state in item.items()}
        data[field.name] = item
    return data


def _decode(cls: type[T], data: dict[str, Any]) -> T:
    nested = _NESTED.get(cls, {})
    known = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for name, item in data.items():
        if name not in known:
            continue  # a field an older version stored and this one dropped
        if name in nested and isinstance(item, dict):
            item = _decode(nested[name], item)
        elif name == "stages" and cls is QueryJob:
            item = {stage: _decode(StageState, state) for stage, state in item.items()}
        values[name] = item
    return cls(**values)
