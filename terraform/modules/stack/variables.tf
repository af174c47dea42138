# Everything that can differ between deployments. The defaults are the house defaults; an environment
# passes only what it sets differently. Variables an environment passes straight from its operator's
# terraform.tfvars are nullable = false, so an unset (null) value there means the default here.

variable "environment" {
  description = "Deployment name (dev, prod): ENVIRONMENT of every function, and the suffix of every resource name (convoinsight-<environment>-..., <function>-<environment>), so environments can share a project."
  type        = string
}

variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, queue, scheduler job, buckets and gateway (must offer API Gateway, e.g. us-central1, europe-west1, asia-northeast1)."
  type        = string
}

variable "firebase_project_id" {
  description = "Firebase project whose ID tokens the gateway accepts; null means project_id."
  type        = string
  default     = null
}

variable "firestore_location" {
  description = "Firestore location (region or multi-region such as eur3, nam5); fixed once the database exists."
  type        = string
}

variable "firestore_database" {
  description = "Firestore database id (FIRESTORE_DATABASE): `(default)`, or a named database so several environments can share a project."
  type        = string
  nullable    = false
  default     = "(default)"
}

variable "create_firestore_database" {
  description = "Create the Firestore database; false when it already exists (e.g. made by Firebase) and only its indexes are managed here."
  type        = bool
  nullable    = false
  default     = true
}

variable "firestore_delete_protection" {
  description = "Protect the Firestore database from deletion (API and terraform destroy)."
  type        = bool
  default     = false
}

variable "collection_prefix" {
  description = "Prefix of every metadata collection (COLLECTION_PREFIX)."
  type        = string
  nullable    = false
  default     = ""
}

variable "cors_origins" {
  description = "Browser origins allowed to call the API and fetch signed URLs (CORS_ORIGINS and the data bucket's CORS), e.g. [\"https://app.example.com\"]."
  type        = list(string)
}

variable "admin_users" {
  description = "User ids (Firebase uids) allowed to administer prompts (ADMIN_USERS)."
  type        = list(string)
  nullable    = false
  default     = []
}

variable "llm_default_model" {
  description = "LiteLLM model id a question uses when it names none (LLM_DEFAULT_MODEL), e.g. gemini/gemini-2.5-flash; its provider needs a key in llm_default_api_keys (or each user's own)."
  type        = string

  validation {
    condition     = trimspace(var.llm_default_model) != ""
    error_message = "llm_default_model must name a model, e.g. gemini/gemini-2.5-flash."
  }
}

variable "llm_default_api_keys" {
  description = "The server's own provider keys, provider=key pairs separated by commas (e.g. gemini=AIza...): the first version of the LLM_DEFAULT_API_KEYS secret. Kept in the Terraform state; set it with TF_VAR_llm_default_api_keys rather than in a file."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^\\s*[A-Za-z0-9_.-]+=[^,]+(,\\s*[A-Za-z0-9_.-]+=[^,]+)*\\s*$", var.llm_default_api_keys))
    error_message = "llm_default_api_keys must be provider=key pairs separated by commas (e.g. gemini=AIza...)."
  }
}

variable "public_base_url" {
  description = "The API's public origin (PUBLIC_BASE_URL) when a custom domain fronts the gateway, e.g. https://api.example.com; empty uses the host each request came to (the gateway's)."
  type        = string
  nullable    = false
  default     = ""

  validation {
    condition     = var.public_base_url == "" || can(regex("^https://[^/]+$", var.public_base_url))
    error_message = "public_base_url must be empty or an https origin without a path (https://api.example.com)."
  }
}

variable "log_level" {
  description = "Python logging level of every function (LOG_LEVEL)."
  type        = string
  default     = "INFO"
}

variable "max_upload_bytes" {
  description = "Largest file uploaded through a function, per file (MAX_UPLOAD_BYTES). Requests through API Gateway and Cloud Run are capped at 32 MiB, so the default leaves room for multipart overhead; bigger files go by direct upload (direct_upload_max_bytes)."
  type        = number
  default     = 31457280
}

variable "direct_upload_max_bytes" {
  description = "Largest file a direct upload (POST /api/v1/uploads: a signed PUT to the bucket, then a commit) may reserve (DIRECT_UPLOAD_MAX_BYTES). Its commit stages the file in the datasets function's memory-backed /tmp and ingests it at up to about 3x its size: two such commits at once (the datasets function's concurrency, 2) fit its 4 GiB; raise both together."
  type        = number
  default     = 402653184
}

variable "session_retention_days" {
  description = "Conversations idle this many days are deleted whole (questions, result tables, charts, history) by the cleanup function (SESSION_RETENTION_DAYS; 0 keeps them until their user deletes them)."
  type        = number
  default     = 180
  validation {
    condition     = var.session_retention_days >= 0 && floor(var.session_retention_days) == var.session_retention_days
    error_message = "session_retention_days must be a whole number of days, 0 or more."
  }
}

variable "redis_enabled" {
  description = "Provision Memorystore for Redis and a VPC connector (modules/redis) and point every function at it (CACHE_BACKEND=redis, REDIS_URL as a secret). Without Redis, rate limits and the answer cache are per instance and an answer's text reaches the events stream only whole."
  type        = bool
  nullable    = false
  default     = false
}

variable "redis_tier" {
  description = "Memorystore tier when redis_enabled: BASIC (one node) or STANDARD_HA (replica with failover)."
  type        = string
  nullable    = false
  default     = "BASIC"
}

variable "redis_memory_size_gb" {
  description = "Memorystore memory in GiB when redis_enabled."
  type        = number
  nullable    = false
  default     = 1
}

variable "redis_network" {
  description = "VPC network (name) the Memorystore instance and the VPC connector join when redis_enabled."
  type        = string
  nullable    = false
  default     = "default"
}

variable "redis_connector_cidr" {
  description = "Unused /28 of redis_network for the VPC connector when redis_enabled."
  type        = string
  nullable    = false
  default     = "10.8.0.0/28"
}

variable "redis_url" {
  description = "A Redis you run yourself (redis://10.x.x.x:6379/0), with vpc_connector to reach it; empty keeps the per-instance memory cache unless redis_enabled. Not with redis_enabled, which supplies its own."
  type        = string
  nullable    = false
  default     = ""
}

variable "vpc_connector" {
  description = "Serverless VPC Access connector (projects/<p>/locations/<r>/connectors/<name>) through which the functions reach redis_url; null for none. Not with redis_enabled, which makes its own."
  type        = string
  default     = null
}

variable "cloud_sql_enabled" {
  description = "Keep the metadata in Cloud SQL for PostgreSQL (modules/cloud_sql: METADATA_BACKEND=sql, CLOUD_SQL_INSTANCE, DATABASE_URL as a secret) instead of Firestore."
  type        = bool
  nullable    = false
  default     = false
}

variable "cloud_sql_tier" {
  description = "Cloud SQL machine tier when cloud_sql_enabled, e.g. db-custom-1-3840."
  type        = string
  nullable    = false
  default     = "db-custom-1-3840"
}

variable "cloud_sql_availability_type" {
  description = "ZONAL, or REGIONAL (standby with failover), when cloud_sql_enabled."
  type        = string
  nullable    = false
  default     = "ZONAL"
}

variable "build_service_account" {
  description = "Service account (projects/<p>/serviceAccounts/<email>) Cloud Build uses to build the functions; null keeps the project default."
  type        = string
  default     = null
}

variable "function_defaults" {
  description = "Sizing of a function that function_overrides does not mention."
  type = object({
    memory          = string
    cpu             = optional(string)
    timeout_seconds = number
    min_instances   = number
    max_instances   = number
    concurrency     = number
    ingress         = string
  })
  default = {
    memory          = "512Mi"
    timeout_seconds = 60
    min_instances   = 0
    max_instances   = 10
    concurrency     = 1
    ingress         = "ALLOW_ALL"
  }
}

variable "function_overrides" {
  description = "Per-function sizing, by function name; unset fields fall back to function_defaults. Gateway-routed functions need ingress ALLOW_ALL (API Gateway traffic is external); agents and cleanup are only called by Cloud Tasks and Cloud Scheduler, which count as internal traffic."
  type = map(object({
    memory          = optional(string)
    cpu             = optional(string)
    timeout_seconds = optional(number)
    min_instances   = optional(number)
    max_instances   = optional(number)
    concurrency     = optional(number)
    ingress         = optional(string)
  }))
  nullable = false
  default = {
    # Liveness answers in milliseconds and imports nothing heavy.
    health = { memory = "256Mi", timeout_seconds = 10, max_instances = 5 }
    # Parses uploads (CSV, Excel, Parquet) into Polars, writes Parquet and a profile. Two requests at once: two
    # of the heaviest (a direct upload's commit, about 3x its 384 MiB; a result download, 1310 MiB) fit 4Gi
    # beside the server, and listings and previews no longer queue behind one upload.
    datasets = { memory = "4Gi", cpu = "1", timeout_seconds = 300, concurrency = 2, max_instances = 30 }
    # Runs LLM stages and DuckDB over the data, renders charts. A stage spends about 95% of its time waiting on
    # its model call (capacity/stage_times.yaml), so one vCPU serves ten stages at once; a new instance pays
    # about 3 s of LiteLLM import before its first model call, which ten slots spread over ten times the work.
    # 4Gi: two worst-case SQL processes (SQL_MEMORY_LIMIT_MB + headroom; SQL_CONCURRENCY keeps it to two per
    # instance whatever its concurrency) and the chart renderer beside the server. 50 x 10 slots hold 1,000 users' stages with room (terraform/README.md, "Capacity model").
    agents = { memory = "4Gi", cpu = "1", timeout_seconds = 540, max_instances = 50, concurrency = 10, ingress = "ALLOW_INTERNAL_ONLY" }
    # An event stream stays open while its question runs (EVENTS_STREAM_SECONDS, 240 s, then the client
    # reconnects) and spends nearly all of it asleep between polls: many streams share an instance instead of
    # each holding one. A result download takes SQL_MEMORY_LIMIT_MB (1024) + its query process (256) + the
    # file (up to 30 MiB), two at once per instance (RESULT_DOWNLOAD_CONCURRENCY): 2 x 1310 MiB beside the
    # server's own memory fits in 4Gi, the most one vCPU may have (terraform/README.md, "Sizing").
    queries = { memory = "4Gi", cpu = "1", timeout_seconds = 300, concurrency = 80 }
    # Synchronous POST /query holds its request for the whole question, asleep between reads of the job: with
    # one request an instance, 10 instances were 10 questions at once. Its uploads are multipart (30 MiB, about
    # 100 MiB while parsed): twenty at once fit 4Gi beside the server.
    legacy = { memory = "4Gi", cpu = "1", timeout_seconds = 300, concurrency = 20, max_instances = 20 }
    # PDF export renders charts.
    sessions = { memory = "1Gi", timeout_seconds = 120 }
    charts   = { memory = "1Gi", timeout_seconds = 120 }
    postgres = { memory = "1Gi", timeout_seconds = 120 }
    # One run at a time, hourly; scans every tenant.
    cleanup = { timeout_seconds = 540, max_instances = 1, ingress = "ALLOW_INTERNAL_ONLY" }
  }
}

variable "pipeline_dispatches_per_second" {
  description = "Rate at which the pipeline queue starts stages (Cloud Tasks max_dispatches_per_second, at most 500). A question is four stage tasks and a stage makes at most one model call, so this also bounds the model request rate of the whole deployment. Its concurrent dispatches follow the agents function's max instances x concurrency. Sized by the capacity model (capacity/, terraform/README.md)."
  type        = number
  default     = 200

  validation {
    condition     = var.pipeline_dispatches_per_second > 0 && var.pipeline_dispatches_per_second <= 500
    error_message = "pipeline_dispatches_per_second must be above 0 and at most 500 (Cloud Tasks' limit)."
  }
}

variable "cleanup_schedule" {
  description = "Cron schedule of the cleanup job (UTC)."
  type        = string
  default     = "0 * * * *"
}

variable "force_destroy_buckets" {
  description = "Let terraform destroy delete non-empty buckets (throw-away environments only)."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Extra labels on every labelled resource."
  type        = map(string)
  default     = {}
}

variable "audit_log_retention_days" {
  description = "Days the audit log bucket keeps audit lines (1 to 3650); AUDIT_RETENTION_DAYS governs the metadata store's copy."
  type        = number
  default     = 400
}

variable "audit_log_locked" {
  description = "Lock the audit log bucket's retention (irreversible; prod only)."
  type        = bool
  default     = false
}
