"""Settings: every configuration value, declared once, read from the environment once.

Nothing else in the code base reads ``os.environ``. Each ``Setting`` names its environment variable,
its default and a one-line help text; ``tests/unit/test_config.py`` checks that the README's
configuration table documents every one of them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from common.errors import ConfigurationError


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


# The kinds of backend a readiness check can probe (READINESS_CHECKS), one per port chosen by kind.
READINESS_KINDS = ("storage", "metadata", "cache", "tasks")

SETTINGS: tuple[Setting, ...] = (
    Setting("environment", "ENVIRONMENT", "local", "Deployment name, shown by health; `local`, `dev`, `prod`."),
    Setting("auth_mode", "AUTH_MODE", "dev", "How callers are identified: `gateway`, `token` or `dev`.",
            choices=("gateway", "token", "dev")),
    Setting("auth_token_secret", "AUTH_TOKEN_SECRET", "",
            "HS256 secret that signs bearer tokens in `token` mode (`make token TOKEN_USER=alice`)."),
    Setting("dev_user", "DEV_USER", "",
            "In `dev` mode, the user assumed when a request names none (lets an unmodified frontend run locally)."),
    Setting("admin_users", "ADMIN_USERS", (),
            "Comma-separated user ids allowed to change the shipped prompts (PUT/DELETE /api/v1/prompts/{name}).",
            _csv),
    Setting("url_signing_secret", "URL_SIGNING_SECRET", "",
            "Secret (32+ characters) that signs chart URLs served by the `charts` function; comma-separated to "
            "rotate (the first signs, all verify). Empty: the local emulator generates one at start."),
    Setting("chart_url_ttl_seconds", "CHART_URL_TTL_SECONDS", 7 * 24 * 3600,
            "Lifetime of a signed chart URL, in seconds (at most 604800, the GCS V4 limit).", int),
    Setting("cors_origins", "CORS_ORIGINS", ("*",), "Comma-separated allowed browser origins, or `*`.", _csv),
    Setting("public_base_url", "PUBLIC_BASE_URL", "",
            "The API's public origin (`https://<gateway host>`), for links the original API's frontend fetches from "
            "the browser (a listing's `signed_url`). Empty: the host the request came to (behind API Gateway, "
            "its `X-Forwarded-Host`)."),
    Setting("storage_backend", "STORAGE_BACKEND", "local", "Blob store: `local` filesystem or `gcs`.",
            choices=("local", "gcs")),
    Setting("data_dir", "DATA_DIR", "./.local_data", "Root of local blobs and the default SQLite file."),
    Setting("gcs_bucket", "GCS_BUCKET", "", "Bucket for blobs when `STORAGE_BACKEND=gcs`."),
    Setting("metadata_backend", "METADATA_BACKEND", "sql", "Record store: `sql` (SQLite or Postgres) or `firestore`.",
            choices=("sql", "firestore")),
    Setting("database_url", "DATABASE_URL", "",
            "SQLAlchemy URL of the metadata database; empty means SQLite in `DATA_DIR`."),
    Setting("cloud_sql_instance", "CLOUD_SQL_INSTANCE", "",
            "`project:region:instance`; when set, the SQL store connects through the Cloud SQL connector."),
    Setting("firestore_database", "FIRESTORE_DATABASE", "(default)", "Firestore database id."),
    Setting("collection_prefix", "COLLECTION_PREFIX", "",
            "Prefix of every metadata collection or table name (lets tests and environments share a database)."),
    Setting("gcp_project", "GOOGLE_CLOUD_PROJECT", "", "Google Cloud project id."),
    Setting("cache_backend", "CACHE_BACKEND", "memory",
            "Cache: `memory` (per instance) or `redis`. It also carries an answer's text from the agents function to "
            "the events stream while the model writes it: in the cloud that needs `redis` (per instance, the answer "
            "arrives whole with the `end` event).",
            choices=("memory", "redis")),
    Setting("redis_url", "REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL when `CACHE_BACKEND=redis`."),
    Setting("max_upload_bytes", "MAX_UPLOAD_BYTES", 200 * 1024 * 1024,
            "Largest file uploaded through a function (multipart or raw body), per file, in bytes; larger is 413, "
            "checked while streaming. Direct uploads use `DIRECT_UPLOAD_MAX_BYTES`.", int),
    Setting("direct_upload_max_bytes", "DIRECT_UPLOAD_MAX_BYTES", 1024 * 1024 * 1024,
            "Largest file a direct upload (`POST /api/v1/uploads`, sent to storage, not through a function) may "
            "reserve, in bytes; larger is 413. The commit stages the file in the temporary folder (memory, on "
            "Cloud Run) and ingests it (about 3x the file): size the datasets function at 4-5x this.", int),
    Setting("upload_url_ttl_seconds", "UPLOAD_URL_TTL_SECONDS", 3600,
            "Lifetime of the URL a direct upload (`POST /api/v1/uploads`) sends its file to, in seconds.", int),
    Setting("max_columns", "MAX_COLUMNS", 2000, "Most columns a tabular upload may have.", int),
    Setting("ragged_row_tolerance", "RAGGED_ROW_TOLERANCE", 0.01,
            "Largest share of CSV rows with more fields than the header before an upload is refused.",
            float),
    Setting("excel_max_uncompressed_bytes", "EXCEL_MAX_UNCOMPRESSED_BYTES", 1024 * 1024 * 1024,
            "Largest number of bytes an upload may decompress to: an .xlsx/.docx archive counted while it is "
            "inflated, a Parquet file's decoded pages (ARCHIVE_TOO_LARGE, TABLE_TOO_LARGE).", int),
    Setting("ingest_max_cells", "INGEST_MAX_CELLS", 100_000_000,
            "Most cells (rows x columns) one uploaded table may have, in any format; more is 413 TABLE_TOO_LARGE "
            "(a Parquet file is checked before it is decoded, and its decoded bytes against "
            "EXCEL_MAX_UNCOMPRESSED_BYTES).", int),
    Setting("preview_rows", "PREVIEW_ROWS", 1000, "Rows kept in the fast preview copy written at upload.", int),
    Setting("attachment_text_chars", "ATTACHMENT_TEXT_CHARS", 20000, "Characters of text kept from a PDF/DOCX.",
            int),
    Setting("polars_max_threads", "POLARS_MAX_THREADS", 1,
            "Threads Polars may use; each one buffers its own chunk, so this bounds upload memory.", int),
    Setting("sql_memory_limit_mb", "SQL_MEMORY_LIMIT_MB", 1024,
            "DuckDB's memory limit per SQL query, in MB; a query that needs more is refused (SQL_TOO_EXPENSIVE).",
            int),
    Setting("sql_threads", "SQL_THREADS", 2, "Threads DuckDB may use per SQL query.", int),
    Setting("sql_concurrency", "SQL_CONCURRENCY", 2,
            "SQL queries (result downloads included) one instance runs at once, each in a process that may take "
            "SQL_MEMORY_LIMIT_MB + 256 MB: size it with the instance's memory. One more waits for a slot within "
            "its own time limit, then answers 503 SQL_BUSY.", int),
    Setting("sql_timeout_seconds", "SQL_TIMEOUT_SECONDS", 20.0,
            "Longest a SQL query may run before it is interrupted (SQL_TIMEOUT).", float),
    Setting("sql_max_rows", "SQL_MAX_ROWS", 10000, "Most rows a SQL query returns; more are cut (`truncated`).", int),
    Setting("sql_max_value_bytes", "SQL_MAX_VALUE_BYTES", 1024 * 1024,
            "Largest single value a SQL query (DuckDB or Postgres) may return, in bytes of JSON "
            "(SQL_TOO_EXPENSIVE).", int),
    Setting("sql_max_result_bytes", "SQL_MAX_RESULT_BYTES", 16 * 1024 * 1024,
            "Largest serialised result of a SQL query (DuckDB or Postgres), in bytes; rows past it are cut "
            "(`truncated`).", int),
    Setting("result_download_max_rows", "RESULT_DOWNLOAD_MAX_ROWS", 1_000_000,
            "Most rows a downloaded result (CSV, XLSX, Parquet) may hold; a larger result is refused with 413 "
            "before a byte is sent (RESULT_TOO_LARGE).", int),
    Setting("result_download_max_bytes", "RESULT_DOWNLOAD_MAX_BYTES", 30 * 1024 * 1024,
            "Largest downloaded result file, in bytes (under the 32 MiB response limit of API Gateway and Cloud "
            "Run); a larger one is refused with 413 (RESULT_TOO_LARGE).", int),
    Setting("result_download_timeout_seconds", "RESULT_DOWNLOAD_TIMEOUT_SECONDS", 120.0,
            "Longest the query and the writing of a downloaded result may take together (SQL_TIMEOUT).", float),
    Setting("result_download_concurrency", "RESULT_DOWNLOAD_CONCURRENCY", 2,
            "Downloads an instance prepares and sends at once, each a SQL process and a file; one more waits "
            "a few seconds, then is refused with 503 (DOWNLOADS_BUSY).", int),
    Setting("max_request_bytes", "MAX_REQUEST_BYTES", 1024 * 1024,
            "Largest request body that is not a file upload (JSON, forms), in bytes; larger is 413 before it "
            "is read.", int),
    Setting("chart_max_pixels", "CHART_MAX_PIXELS", 4_000_000,
            "Largest chart a spec may ask for, width x height in pixels (CHART_TOO_EXPENSIVE).", int),
    Setting("chart_render_memory_mb", "CHART_RENDER_MEMORY_MB", 512,
            "Memory one chart render may add in the child process that renders charts, on top of its idle engine "
            "(about 565 MB of data segment), in MB; a spec that needs more fails alone.",
            int),
    Setting("chart_render_timeout_seconds", "CHART_RENDER_TIMEOUT_SECONDS", 15.0,
            "Longest one chart may take to render before its child process is stopped (CHART_TOO_EXPENSIVE).",
            float),
    Setting("encryption_keys", "ENCRYPTION_KEYS", "",
            "Comma-separated Fernet keys (the first encrypts, all decrypt, so keys rotate) for secrets at rest; "
            "when unset, the emulator makes one and keeps it in `DATA_DIR`."),
    Setting("llm_default_model", "LLM_DEFAULT_MODEL", "",
            "LiteLLM model id used when a question names none (e.g. `gemini/gemini-2.5-flash`)."),
    Setting("llm_default_api_keys", "LLM_DEFAULT_API_KEYS", "",
            "The server's own provider keys, `provider=key` pairs separated by commas (from Secret Manager in "
            "the cloud); used when neither the request nor the tenant supplies one."),
    Setting("llm_api_base", "LLM_API_BASE", "",
            "Base URL of an OpenAI-compatible endpoint (vLLM, Ollama, a gateway) for the server's calls."),
    Setting("llm_allowed_hosts", "LLM_ALLOWED_HOSTS", "",
            "Hosts a request's or a saved key's `api_base` may point at: `*`, or host names, IPs/CIDRs and `public`. "
            "Empty: `*` when `ENVIRONMENT=local`, else `public`."),
    Setting("llm_key_check_urls", "LLM_KEY_CHECK_URLS", "",
            "`provider=URL` pairs, comma-separated: the base URL a saved key is checked at (its model list, "
            "`GET <URL>/models`) instead of the provider's own; a provider not built in is asked OpenAI's way."),
    Setting("llm_timeout_seconds", "LLM_TIMEOUT_SECONDS", 60.0, "Timeout of one LLM call.", float),
    Setting("llm_max_reply_bytes", "LLM_MAX_REPLY_BYTES", 4 * 1024 * 1024,
            "Largest response body read from a model endpoint, in bytes; a longer one fails that call "
            "(MODEL_REPLY_TOO_LARGE) instead of filling the instance's memory.", int),
    Setting("export_max_bytes", "EXPORT_MAX_BYTES", 32 * 1024 * 1024,
            "Largest session PDF export, in bytes of text and chart images put in; later turns are left out "
            "and the PDF says so.", int),
    Setting("llm_max_retries", "LLM_MAX_RETRIES", 2, "Retries of one model on 429/5xx/timeouts before its fallbacks.",
            int),
    Setting("stt_model", "STT_MODEL", "groq/whisper-large-v3",
            "LiteLLM model id that turns voice questions into text (`POST /api/v1/llm/transcriptions`)."),
    Setting("stt_max_bytes", "STT_MAX_BYTES", 25 * 1024 * 1024,
            "Largest audio clip accepted for transcription, in bytes (the providers' own limit is 25 MB).", int),
    Setting("prompt_token_budget", "PROMPT_TOKEN_BUDGET", 6000,
            "Most tokens the description of a domain's tables may take in one prompt (wide tables are cut).", int),
    Setting("prompt_cache_ttl_seconds", "PROMPT_CACHE_TTL_SECONDS", 30,
            "How long an instance keeps the prompt overrides it read; a change reaches every instance within it.",
            int),
    Setting("history_turns", "HISTORY_TURNS", 6, "Earlier turns given to the agents as context for follow-ups.",
            int),
    Setting("stage_lease_seconds", "STAGE_LEASE_SECONDS", 300,
            "How long a pipeline stage stays claimed before a retried task may take it over.", int),
    Setting("query_wait_seconds", "QUERY_WAIT_SECONDS", 240,
            "How long the original API's synchronous POST /query waits for its answer.", int),
    Setting("events_stream_seconds", "EVENTS_STREAM_SECONDS", 240,
            "How long one question's event stream stays open before it tells the client to reconnect (below the "
            "queries function's 300 s timeout); the reconnect resumes where it left off (Last-Event-ID).", int),
    Setting("answer_cache_ttl_seconds", "ANSWER_CACHE_TTL_SECONDS", 3600,
            "How long an answer is reused for the same question on the same data and conversation (0: never).",
            int),
    Setting("session_retention_days", "SESSION_RETENTION_DAYS", 0,
            "Conversations idle this many days are deleted whole by the cleanup function: their questions, result "
            "tables, charts and history (0: kept until their user deletes them).", int),
    Setting("audit_retention_days", "AUDIT_RETENTION_DAYS", 400,
            "Audit records older than this many days are deleted from the metadata store by the cleanup function "
            "(0: kept for ever). The audit log bucket keeps its own copy for its own retention (Terraform).", int),
    Setting("rate_limits", "RATE_LIMITS", "query=30/minute,upload=60/minute,sql=120/minute",
            "Requests each user may make per window, by class (`query`: questions and suggestions; `upload`; "
            "`sql`: SQL over a domain or a Postgres connection), in the `limits` library's notation; empty: no "
            "limit."),
    Setting("log_level", "LOG_LEVEL", "INFO", "Python logging level."),
    Setting("log_format", "LOG_FORMAT", "text",
            "`text`, or `json`: one Cloud Logging structured entry per line, with severity, request id and trace.",
            choices=("text", "json")),
    Setting("readiness_checks", "READINESS_CHECKS", READINESS_KINDS,
            "Comma-separated backends `GET /api/v1/health/ready` probes, of `storage`, `metadata`, `cache`, `tasks`: "
            "those the health function's own service account may reach (in the cloud, `metadata,cache`).", _csv),
    Setting("breaker_failure_threshold", "BREAKER_FAILURE_THRESHOLD", 5,
            "Outages in a row (refused connections, timeouts, 5xx) after which a dependency's circuit breaker opens: "
            "each model deployment, saved Postgres connection, and the blob, metadata, cache and task backends.",
            int),
    Setting("breaker_reset_seconds", "BREAKER_RESET_SECONDS", 30.0,
            "How long an open circuit breaker fails calls at once (503 DEPENDENCY_UNAVAILABLE, or straight to the "
            "fallback model) before one call probes the dependency again.", float),
    Setting("tasks_backend", "TASKS_BACKEND", "local",
            "Task queue of query stages: `local` (the emulator's in-process dispatcher) or `cloudtasks`.",
            choices=("local", "cloudtasks")),
    Setting("tasks_queue", "TASKS_QUEUE", "",
            "Cloud Tasks queue, `projects/<project>/locations/<location>/queues/<queue>`, when "
            "`TASKS_BACKEND=cloudtasks`."),
    Setting("tasks_target_url", "TASKS_TARGET_URL", "",
            "Base URL of the `agents` function that receives each task (`https://...`)."),
    Setting("tasks_service_account", "TASKS_SERVICE_ACCOUNT", "",
            "Service account whose OIDC token Cloud Tasks sends with each task; empty sends none."),
    Setting("tasks_max_attempts", "TASKS_MAX_ATTEMPTS", 5,
            "Attempts per task before it is dropped: the local dispatcher's, and in the cloud the queue's retry "
            "config (Terraform sets it from there), so a stage knows its last delivery.", int),
    Setting("pg_allowed_hosts", "PG_ALLOWED_HOSTS", "",
            "Postgres hosts connections may reach: `*`, or a comma list of host names, IPs/CIDRs and `public` "
            "(globally routable addresses only). Empty: `*` when `ENVIRONMENT=local`, else `public`."),
    Setting("pg_connect_timeout_seconds", "PG_CONNECT_TIMEOUT_SECONDS", 5.0,
            "Longest a connection to a user's Postgres may take to open.", float),
    Setting("pg_statement_timeout_seconds", "PG_STATEMENT_TIMEOUT_SECONDS", 20.0,
            "Longest one statement may run on a user's Postgres (statement_timeout).", float),
    Setting("pg_max_rows", "PG_MAX_ROWS", 10000,
            "Most rows a Postgres query or table read returns, and the row cap of a table loaded for a question.",
            int),
    Setting("pg_engine_cache_size", "PG_ENGINE_CACHE_SIZE", 32,
            "Pooled Postgres engines kept per instance; the least recently used is closed beyond this.", int),
)

_BY_NAME = {setting.name: setting for setting in SETTINGS}
_QUEUE_PATH = re.compile(r"projects/[^/]+/locations/[^/]+/queues/[^/]+")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The resolved configuration of one instance. Build it with ``Settings.from_env``."""

    values: Mapping[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Resolve every setting from ``environ`` (default: the process environment), then apply overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.env)
            values[setting.name] = setting.default if raw is None else _parse(setting, raw)
        for name, value in overrides.items():
            if name not in _BY_NAME:
                raise ConfigurationError(f"unknown setting {name!r}")
            values[name] = value
        settings = cls(values)
        settings.validate()
        return settings

    def replace(self, **overrides: Any) -> Settings:
        """Return a copy with some values changed (tests use this)."""
        unknown = set(overrides) - set(_BY_NAME)
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {sorted(unknown)}")
        settings = Settings({**self.values, **overrides})
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse combinations that cannot work, with the variable to fix."""
        for setting in SETTINGS:
            value = self.values[setting.name]
            if setting.choices and value not in setting.choices:
                raise ConfigurationError(f"{setting.env} must be one of {', '.join(setting.choices)}, got {value!r}")
        if self.environment == "prod" and self.auth_mode == "dev":
            raise ConfigurationError("ENVIRONMENT=prod refuses AUTH_MODE=dev (callers would choose who they are): "
                                     "set AUTH_MODE=gateway or token")
        if self.auth_mode == "token" and len(self.auth_token_secret) < 32:
            raise ConfigurationError("AUTH_MODE=token needs AUTH_TOKEN_SECRET of at least 32 characters")
        if any(len(part.strip()) < 32 for part in self.url_signing_secret.split(",") if part.strip()):
            raise ConfigurationError("URL_SIGNING_SECRET needs secrets of at least 32 characters")
        if not 1 <= self.chart_url_ttl_seconds <= 7 * 24 * 3600:
            raise ConfigurationError("CHART_URL_TTL_SECONDS must be from 1 to 604800 (7 days)")
        if not 60 <= self.upload_url_ttl_seconds <= 7 * 24 * 3600:
            raise ConfigurationError("UPLOAD_URL_TTL_SECONDS must be from 60 to 604800 (7 days)")
        if self.storage_backend == "gcs" and not self.gcs_bucket:
            raise ConfigurationError("STORAGE_BACKEND=gcs needs GCS_BUCKET")
        if min(self.sql_memory_limit_mb, self.sql_threads, self.sql_max_rows) < 1 or self.sql_timeout_seconds <= 0:
            raise ConfigurationError("SQL_MEMORY_LIMIT_MB, SQL_THREADS, SQL_MAX_ROWS and SQL_TIMEOUT_SECONDS "
                                     "must be positive")
        if min(self.result_download_max_rows, self.result_download_max_bytes, self.result_download_concurrency) < 1 \
                or self.result_download_timeout_seconds <= 0:
            raise ConfigurationError("RESULT_DOWNLOAD_MAX_ROWS, RESULT_DOWNLOAD_MAX_BYTES, "
                                     "RESULT_DOWNLOAD_TIMEOUT_SECONDS and RESULT_DOWNLOAD_CONCURRENCY must be positive")
        if self.prompt_cache_ttl_seconds < 0:
            raise ConfigurationError("PROMPT_CACHE_TTL_SECONDS must be at least 0")
        if self.tasks_max_attempts < 1:
            raise ConfigurationError("TASKS_MAX_ATTEMPTS must be at least 1")
        if self.ingest_max_cells < 1:
            raise ConfigurationError("INGEST_MAX_CELLS must be at least 1")
        if self.direct_upload_max_bytes < 1:
            raise ConfigurationError("DIRECT_UPLOAD_MAX_BYTES must be at least 1")
        if self.breaker_failure_threshold < 1 or self.breaker_reset_seconds <= 0:
            raise ConfigurationError("BREAKER_FAILURE_THRESHOLD and BREAKER_RESET_SECONDS must be positive")
        unknown_checks = sorted(set(self.readiness_checks) - set(READINESS_KINDS))
        if unknown_checks or not self.readiness_checks:
            raise ConfigurationError(f"READINESS_CHECKS must name some of {', '.join(READINESS_KINDS)}, "
                                     f"got {', '.join(self.readiness_checks) or 'none'}")
        if min(self.pg_max_rows, self.pg_engine_cache_size) < 1 or \
                min(self.pg_connect_timeout_seconds, self.pg_statement_timeout_seconds) <= 0:
            raise ConfigurationError("PG_MAX_ROWS, PG_ENGINE_CACHE_SIZE, PG_CONNECT_TIMEOUT_SECONDS and "
                                     "PG_STATEMENT_TIMEOUT_SECONDS must be positive")
        if self.tasks_backend == "cloudtasks":
            if not _QUEUE_PATH.fullmatch(self.tasks_queue):
                raise ConfigurationError("TASKS_BACKEND=cloudtasks needs TASKS_QUEUE="
                                         "projects/<project>/locations/<location>/queues/<queue>")
            if not self.tasks_target_url.startswith(("https://", "http://")):
                raise ConfigurationError("TASKS_BACKEND=cloudtasks needs TASKS_TARGET_URL, the agents function's URL")


def _parse(setting: Setting, raw: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{setting.env}: {exc}") from None
