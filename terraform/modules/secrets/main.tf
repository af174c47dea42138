# Secret Manager secrets, without their values. The values never pass through Terraform (they would
# sit in plain text in the state); an operator adds them once per environment (see terraform/README.md).
# Read access is granted per function in modules/function, only to the functions that mount a secret.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

resource "google_secret_manager_secret" "this" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  labels    = merge(var.labels, { purpose = replace(each.key, "_", "-") })

  annotations = {
    description = each.value.description
  }

  replication {
    auto {}
  }
}
