variable "project_id" {
  description = "Google Cloud project of the queue."
  type        = string
}

variable "region" {
  description = "Queue location; the agents function's region."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the queue name (e.g. convoinsight-dev)."
  type        = string
}

variable "environment" {
  description = "Deployment name (dev, prod); suffixes the task-invoker service account id."
  type        = string
}

variable "target_url" {
  description = "URL the tasks are sent to and OIDC audience of their tokens: the agents service's run.app URL (https://<service>-<project number>.<region>.run.app), which internal-only ingress accepts from Cloud Tasks."
  type        = string

  validation {
    # Cloud Run gives a service this deterministic URL only when "<service>-<project number>" fits one
    # DNS label; a longer name would get a truncated, unpredictable one.
    condition     = can(regex("^https://[a-z0-9-]{1,63}\\.[a-z0-9-]+\\.run\\.app$", var.target_url))
    error_message = "target_url must be https://<service>-<project number>.<region>.run.app, with <service>-<project number> at most 63 characters (shorten the environment name)."
  }
}

variable "max_attempts" {
  description = "Deliveries of one stage before it is abandoned (stages are idempotent, so a retry is safe); the job then times out as failed."
  type        = number
  default     = 5
}

variable "min_backoff" {
  description = "Wait before the first retry of a failed stage (duration string, e.g. 2s)."
  type        = string
  default     = "2s"
}

variable "max_backoff" {
  description = "Longest wait between retries (duration string, e.g. 60s); rate-limited LLM calls need room to recover."
  type        = string
  default     = "60s"
}

variable "max_doublings" {
  description = "How many times the backoff doubles before growing linearly."
  type        = number
  default     = 4
}

variable "max_dispatches_per_second" {
  description = "Rate at which stages are started; bounds the LLM request rate across all users."
  type        = number
  default     = 10
}

variable "max_concurrent_dispatches" {
  description = "Stages running at once. Keep at or below the agents function's max instances x concurrency, or deliveries bounce with 429 and wait for backoff."
  type        = number
  default     = 20
}
