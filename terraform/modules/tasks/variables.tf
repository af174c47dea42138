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

variable "target_function" {
  description = "Deployed name of the function the tasks call (agents-<environment>); gives the target URL and OIDC audience."
  type        = string
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
