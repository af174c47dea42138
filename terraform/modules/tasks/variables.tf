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
  description = "Rate at which stages are started (a token bucket; Cloud Tasks allows at most 500); bounds the LLM request rate across all users. A question is four stages: 10 a second made 30 questions asked together wait 12 s for their dispatches alone."
  type        = number
  default     = 200

  validation {
    condition     = var.max_dispatches_per_second > 0 && var.max_dispatches_per_second <= 500
    error_message = "max_dispatches_per_second must be above 0 and at most 500."
  }
}

variable "max_concurrent_dispatches" {
  description = "Stages running at once (Cloud Tasks allows at most 5,000). Keep at or below the agents function's max instances x concurrency, or deliveries bounce with 429 and wait for backoff."
  type        = number
  default     = 500

  validation {
    condition     = var.max_concurrent_dispatches >= 1 && var.max_concurrent_dispatches <= 5000
    error_message = "max_concurrent_dispatches must be between 1 and 5000."
  }
}
