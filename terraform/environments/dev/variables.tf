# What an operator sets per environment, in terraform.tfvars. An optional variable left unset (null)
# takes the stack's default (terraform/modules/stack/variables.tf, which also holds what every
# environment shares: function_defaults, log_level, max_upload_bytes, cleanup_schedule, labels, ...).

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
  description = "Firestore database id (FIRESTORE_DATABASE); null means `(default)`. A named database lets several environments share a project."
  type        = string
  default     = null
}

variable "create_firestore_database" {
  description = "Create the Firestore database (null means true); false when it already exists (e.g. made by Firebase) and only its indexes are managed here."
  type        = bool
  default     = null
}

variable "collection_prefix" {
  description = "Prefix of every metadata collection (COLLECTION_PREFIX); null means none."
  type        = string
  default     = null
}

variable "cors_origins" {
  description = "Browser origins allowed to call the API and fetch signed URLs (CORS_ORIGINS and the data bucket's CORS), e.g. [\"https://app.example.com\"]."
  type        = list(string)
}

variable "admin_users" {
  description = "User ids (Firebase uids) allowed to administer prompts (ADMIN_USERS); null means none."
  type        = list(string)
  default     = null
}

variable "llm_default_model" {
  description = "LiteLLM model id a question uses when it names none (LLM_DEFAULT_MODEL), e.g. gemini/gemini-2.5-flash."
  type        = string
}

variable "llm_default_api_keys" {
  description = "The server's own provider keys, provider=key pairs separated by commas: the first version of the LLM_DEFAULT_API_KEYS secret. Give it as TF_VAR_llm_default_api_keys, not in terraform.tfvars."
  type        = string
  sensitive   = true
}

variable "public_base_url" {
  description = "The API's public origin (PUBLIC_BASE_URL) when a custom domain fronts the gateway, e.g. https://api.example.com; null uses the host each request came to."
  type        = string
  default     = null
}

variable "redis_enabled" {
  description = "Provision Memorystore for Redis and its VPC connector (null means false in dev: the per-instance memory cache, or your own redis_url)."
  type        = bool
  default     = null
}

variable "redis_url" {
  description = "A Redis you run yourself (redis://10.x.x.x:6379/0), with vpc_connector to reach it; null keeps the per-instance memory cache. Not with redis_enabled."
  type        = string
  default     = null
}

variable "vpc_connector" {
  description = "Serverless VPC Access connector through which the functions reach redis_url; null for none. Not with redis_enabled."
  type        = string
  default     = null
}

variable "cloud_sql_enabled" {
  description = "Keep the metadata in Cloud SQL for PostgreSQL (modules/cloud_sql) instead of Firestore; null means false."
  type        = bool
  default     = null
}

variable "build_service_account" {
  description = "Service account (projects/<p>/serviceAccounts/<email>) Cloud Build uses to build the functions; null keeps the project default."
  type        = string
  default     = null
}

variable "function_overrides" {
  description = "Per-function sizing, by function name: { agents = { memory = \"4Gi\", max_instances = 5 }, ... }. It replaces the stack's whole default map (null keeps it); unset fields fall back to function_defaults. Fields, default and ingress rules: modules/stack/variables.tf."
  # The stack declares and checks the shape; a copy of it here could drift from it.
  type    = any
  default = null
}
