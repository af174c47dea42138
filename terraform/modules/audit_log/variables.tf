variable "project_id" {
  description = "Google Cloud project whose audit log lines are routed, and where the log bucket is made."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the bucket and sink names (convoinsight-<environment>), so environments in one project stay apart."
  type        = string
}

variable "environment" {
  description = "Environment name (dev, prod): the suffix of the functions' Cloud Run service names whose audit lines are routed."
  type        = string
}

variable "retention_days" {
  description = "Days the log bucket keeps audit lines (1 to 3650); independent of AUDIT_RETENTION_DAYS, the metadata store's copy."
  type        = number
  default     = 400

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 3650
    error_message = "retention_days must be from 1 to 3650."
  }
}

variable "location" {
  description = "Location of the log bucket (`global`, or a region to keep the lines in it)."
  type        = string
  default     = "global"
}

variable "locked" {
  description = "Lock the bucket's retention so no one can shorten it or delete lines early (irreversible: prod only)."
  type        = bool
  default     = false
}

variable "logger" {
  description = "The logger name of the audit lines (jsonPayload.logger); must match common/audit/trail.py."
  type        = string
  default     = "convoinsight.audit"
}
