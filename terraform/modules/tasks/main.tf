# The queue that fans the pipeline stages (plan, manipulate, visualize, analyze, compile) out to the
# agents function, and the identity Cloud Tasks presents when it calls that function.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

resource "google_cloud_tasks_queue" "pipeline" {
  project  = var.project_id
  name     = "${var.name_prefix}-pipeline"
  location = var.region

  rate_limits {
    max_dispatches_per_second = var.max_dispatches_per_second
    max_concurrent_dispatches = var.max_concurrent_dispatches
  }

  retry_config {
    max_attempts  = var.max_attempts
    min_backoff   = var.min_backoff
    max_backoff   = var.max_backoff
    max_doublings = var.max_doublings
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }
}

# A dedicated identity rather than the agents function's runtime account: the callers that enqueue
# (queries, agents, legacy) must be allowed to act as the OIDC identity, and acting as this account
# yields nothing but the right to invoke the agents function (granted in modules/function), whereas
# the agents runtime account holds bucket, Firestore and secret access.
resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "tasks-invoker-${var.environment}"
  display_name = "ConvoInsight Cloud Tasks -> agents (${var.environment})"
  description  = "OIDC identity of pipeline tasks; may only invoke the agents function."
}
