# The audit trail's own log stream: every audit line the functions write (common/audit/trail.py, logger
# "convoinsight.audit", field audit=true, LOG_FORMAT=json) is routed by a sink into a log bucket of its own,
# with its own retention, apart from the _Default bucket's 30 days. The refusals (auth.refused,
# authz.refused, rate_limit.refused) are only here: they are never written to the metadata store.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

locals {
  # Each function's Cloud Run service is named <function>-<environment>: only this environment's lines.
  filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=~\"-${var.environment}$\"",
    "jsonPayload.logger=\"${var.logger}\"",
    "jsonPayload.audit=true",
  ])
}

resource "google_logging_project_bucket_config" "audit" {
  project        = var.project_id
  location       = var.location
  bucket_id      = "${var.name_prefix}-audit"
  retention_days = var.retention_days
  locked         = var.locked
  description    = "Audit log lines of ${var.name_prefix}, kept ${var.retention_days} days."
}

resource "google_logging_project_sink" "audit" {
  project     = var.project_id
  name        = "${var.name_prefix}-audit"
  description = "Routes the audit log lines of ${var.name_prefix} into their own bucket."
  destination = "logging.googleapis.com/${google_logging_project_bucket_config.audit.id}"
  filter      = local.filter

  # A sink into a log bucket of its own project needs no writer identity of its own.
  unique_writer_identity = false
}
