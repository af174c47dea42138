# Log-based metrics from the one structured record each finished question logs (common/services/pipeline/
# runner.py, event "question_finished", LOG_FORMAT=json): questions by status, and distributions of their
# cost, tokens and duration, so cost and latency can be charted and alerted on in Cloud Monitoring with no
# metrics endpoint in the functions.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

locals {
  # The agents function finishes most questions, the queries and legacy functions those answered from the
  # cache; each function's Cloud Run service is named <function>-<environment>.
  filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=~\"-${var.environment}$\"",
    "jsonPayload.event=\"${var.event}\"",
  ])
  status_label = {
    key         = "status"
    value_type  = "STRING"
    description = "How the question ended: succeeded, failed or cancelled."
    extractor   = "EXTRACT(jsonPayload.status)"
  }
  distributions = {
    cost_usd          = { field = "cost_usd", unit = "USD", growth = 4, scale = 0.0001, description = "LLM cost of a question in USD (LiteLLM's price map)." }
    prompt_tokens     = { field = "prompt_tokens", unit = "1", growth = 2, scale = 100, description = "Prompt tokens a question used, over all its LLM calls." }
    duration_ms       = { field = "duration_ms", unit = "ms", growth = 2, scale = 50, description = "Time from submission to the end of a question." }
    completion_tokens = { field = "completion_tokens", unit = "1", growth = 2, scale = 10, description = "Completion tokens a question used, over all its LLM calls." }
  }
}

resource "google_logging_metric" "questions" {
  project     = var.project_id
  name        = "${var.name_prefix}/questions"
  description = "Finished questions, by how they ended."
  filter      = local.filter

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = local.status_label.key
      value_type  = local.status_label.value_type
      description = local.status_label.description
    }
  }

  label_extractors = {
    (local.status_label.key) = local.status_label.extractor
  }
}

resource "google_logging_metric" "question_distribution" {
  for_each = local.distributions

  project         = var.project_id
  name            = "${var.name_prefix}/question_${each.key}"
  description     = each.value.description
  filter          = local.filter
  value_extractor = "EXTRACT(jsonPayload.${each.value.field})"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = each.value.unit

    labels {
      key         = local.status_label.key
      value_type  = local.status_label.value_type
      description = local.status_label.description
    }
  }

  label_extractors = {
    (local.status_label.key) = local.status_label.extractor
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 32
      growth_factor      = each.value.growth
      scale              = each.value.scale
    }
  }
}
