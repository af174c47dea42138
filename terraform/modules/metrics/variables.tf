variable "project_id" {
  description = "Google Cloud project the metrics are created in."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the metric names (convoinsight-<environment>), so environments in one project stay apart."
  type        = string
}

variable "environment" {
  description = "Environment name (dev, prod): the suffix of the functions' Cloud Run service names whose logs are counted."
  type        = string
}

variable "event" {
  description = "The jsonPayload.event value of a finished question's log record; must match common/services/pipeline/runner.py."
  type        = string
  default     = "question_finished"
}
