variable "project_id" {
  description = "Google Cloud project of the job."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Scheduler job."
  type        = string
}

variable "environment" {
  description = "Deployment name (dev, prod); suffixes the scheduler's service account id."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the job name (e.g. convoinsight-dev)."
  type        = string
}

variable "target_url" {
  description = "HTTPS URL of the cleanup function; also the OIDC audience."
  type        = string

  validation {
    condition     = startswith(var.target_url, "https://")
    error_message = "target_url must be the cleanup function's https URL (does functions/cleanup/main.py exist?)."
  }
}

variable "schedule" {
  description = "Cron schedule of the cleanup run (default: hourly, on the hour)."
  type        = string
  default     = "0 * * * *"
}

variable "time_zone" {
  description = "Time zone the schedule is read in."
  type        = string
  default     = "Etc/UTC"
}

variable "attempt_deadline_seconds" {
  description = "How long one run may take before Scheduler counts it failed (15-1800); match the cleanup function's timeout."
  type        = number
  default     = 540
}

variable "retry_count" {
  description = "Retries of a failed run before waiting for the next schedule (cleanup is idempotent)."
  type        = number
  default     = 1
}
