# Secret Manager secrets and their first versions, so every function that mounts `latest` can start on
# the very first apply. The values we own (Fernet keys, the URL-signing secret) are generated here; the
# values only an operator has (the server's LLM provider keys) come in through a sensitive variable.
# Either way the value sits in the Terraform state: the state bucket must be as closed as the secrets
# (terraform/README.md). Later versions (rotation) are added with gcloud and are not Terraform's.
# Read access is granted per function in modules/function, only to the functions that mount a secret.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
    random = {
      source = "hashicorp/random"
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

# A Fernet key is 32 random bytes in URL-safe base64 (random_bytes gives standard base64: swap + and /).
resource "random_bytes" "fernet_key" {
  for_each = { for key, secret in var.secrets : key => secret if secret.generate == "fernet_key" }

  length = 32
}

# An HMAC secret: 64 alphanumeric characters (the code asks for at least 32).
resource "random_password" "hmac_secret" {
  for_each = { for key, secret in var.secrets : key => secret if secret.generate == "hmac_secret" }

  length  = 64
  special = false
}

locals {
  first_values = merge(
    var.values,
    { for key, bytes in random_bytes.fernet_key : key => replace(replace(bytes.base64, "+", "-"), "/", "_") },
    { for key, password in random_password.hmac_secret : key => password.result },
  )
}

# The version every function reads as `latest` until an operator adds a newer one.
resource "google_secret_manager_secret_version" "first" {
  for_each = var.secrets

  secret = google_secret_manager_secret.this[each.key].id
  # A secret neither generated nor in var.values fails the plan here (no such key), before anything exists.
  secret_data = local.first_values[each.key]
}
