variable "project_id" {
  description = "Google Cloud project of the database."
  type        = string
}

variable "location_id" {
  description = "Firestore location (a region such as europe-west1, or a multi-region such as eur3); cannot change after creation."
  type        = string
}

variable "database_id" {
  description = "Database id (FIRESTORE_DATABASE). `(default)` is the project's default database; a named one lets environments share a project."
  type        = string
  default     = "(default)"
}

variable "create_database" {
  description = "Create the database here. Set false when it already exists (e.g. a `(default)` database made by Firebase) and only the indexes are managed."
  type        = bool
  default     = true
}

variable "delete_protection" {
  description = "Refuse to delete the database (through the API and through `terraform destroy`). Keep true for prod."
  type        = bool
  default     = true
}

variable "point_in_time_recovery" {
  description = "Keep 7 days of point-in-time recovery (extra cost, lets an operator undo a bad write)."
  type        = bool
  default     = false
}

variable "collection_prefix" {
  description = "Prefix of every metadata collection name (COLLECTION_PREFIX), so environments or tests can share a database."
  type        = string
  default     = ""
}

variable "collections" {
  description = "Record collections (without prefix) that are listed, each a Firestore collection of its own (common/metadata/firestore.py): every one gets the indexes below. Add a collection here when a service starts listing it."
  type        = list(string)
  default     = ["datasets", "uploads", "queries", "sessions", "turns", "charts", "llm_keys", "pg_connections", "audit"]
}

variable "record_indexes" {
  description = "Composite indexes every listed collection needs, as [field, ASCENDING|DESCENDING] pairs, matching the adapter's queries: tenant_id == t [and parent_digest == digest(parent)], ordered by key, newest first (updated_at then key as tie-break, same direction), oldest first within a parent (a session's turns), or newest created first (charts)."
  type        = list(list(tuple([string, string])))
  default = [
    [["tenant_id", "ASCENDING"], ["parent_digest", "ASCENDING"], ["key", "ASCENDING"]],
    [["tenant_id", "ASCENDING"], ["parent_digest", "ASCENDING"], ["updated_at", "DESCENDING"], ["key", "DESCENDING"]],
    [["tenant_id", "ASCENDING"], ["parent_digest", "ASCENDING"], ["created_at", "ASCENDING"], ["key", "ASCENDING"]],
    [["tenant_id", "ASCENDING"], ["parent_digest", "ASCENDING"], ["created_at", "DESCENDING"], ["key", "DESCENDING"]],
    [["tenant_id", "ASCENDING"], ["created_at", "DESCENDING"], ["key", "DESCENDING"]],
    [["tenant_id", "ASCENDING"], ["updated_at", "DESCENDING"], ["key", "DESCENDING"]],
    [["tenant_id", "ASCENDING"], ["key", "ASCENDING"]],
    # The audit trail, newest first, all of it or one action's (its parent).
    [["tenant_id", "ASCENDING"], ["key", "DESCENDING"]],
    [["tenant_id", "ASCENDING"], ["parent_digest", "ASCENDING"], ["key", "DESCENDING"]],
  ]

  validation {
    condition     = alltrue(flatten([for fields in var.record_indexes : [for field in fields : contains(["ASCENDING", "DESCENDING"], field[1])]]))
    error_message = "Each index field order must be ASCENDING or DESCENDING."
  }
}
