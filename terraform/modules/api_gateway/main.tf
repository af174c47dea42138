# API Gateway in front of the functions: verifies the caller's Firebase ID token, then calls the
# function that common/gateway_routes.yaml names for the path, as its own service account.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
    google-beta = {
      source = "hashicorp/google-beta"
    }
  }
}

module "openapi" {
  source = "./openapi"

  title               = "${var.name_prefix}-api"
  firebase_project_id = var.firebase_project_id
  routes_file         = var.routes_file
  legacy_paths        = var.legacy_paths
  public_paths        = var.public_paths
  backends            = var.backends
}

# The identity the gateway presents to the functions. It holds nothing but roles/run.invoker on the
# routed functions (granted in modules/function), so the functions accept only traffic that passed
# the gateway's JWT check.
resource "google_service_account" "gateway" {
  project      = var.project_id
  account_id   = "apigw-${var.environment}"
  display_name = "ConvoInsight API Gateway (${var.environment})"
  description  = "Calls the routed functions on behalf of verified callers; may only invoke them."
}

resource "google_api_gateway_api" "this" {
  provider = google-beta

  project      = var.project_id
  api_id       = "${var.name_prefix}-api"
  display_name = "ConvoInsight API (${var.environment})"
  labels       = var.labels
}

resource "google_api_gateway_api_config" "this" {
  provider = google-beta

  project = var.project_id
  api     = google_api_gateway_api.this.api_id
  # Configs are immutable: a changed document is a new config id, created before the old one is
  # deleted so the gateway always points at a live config.
  api_config_id = "${var.name_prefix}-${substr(sha256(module.openapi.document), 0, 12)}"
  display_name  = "ConvoInsight API config (${var.environment})"

  openapi_documents {
    document {
      path     = "openapi.json"
      contents = base64encode(module.openapi.document)
    }
  }

  gateway_config {
    backend_config {
      google_service_account = google_service_account.gateway.email
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_api_gateway_gateway" "this" {
  provider = google-beta

  project      = var.project_id
  region       = var.region
  gateway_id   = "${var.name_prefix}-gateway"
  api_config   = google_api_gateway_api_config.this.id
  display_name = "ConvoInsight gateway (${var.environment})"
  labels       = var.labels
}

# Each API gets its own managed service; requests are checked against it, so it must be enabled.
resource "google_project_service" "managed_service" {
  project            = var.project_id
  service            = google_api_gateway_api.this.managed_service
  disable_on_destroy = false
}
