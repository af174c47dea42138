# Hourly call of the cleanup function (expired jobs, results, charts and exports), authenticated by an
# OIDC token of a dedicated service account that may invoke the cleanup function and nothing else.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "scheduler-${var.environment}"
  display_name = "ConvoInsight Cloud Scheduler -> cleanup (${var.environment})"
  description  = "OIDC identity of the cleanup job; may only invoke the cleanup function."
}

resource "google_cloud_scheduler_job" "cleanup" {
  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-cleanup"
  description      = "Delete expired ConvoInsight jobs, results, charts and exports."
  schedule         = var.schedule
  time_zone        = var.time_zone
  attempt_deadline = "${var.attempt_deadline_seconds}s"

  retry_config {
    retry_count = var.retry_count
  }

  http_target {
    http_method = "POST"
    uri         = var.target_url

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = var.target_url
    }
  }
}
