terraform {
  # 1.5: strcontains/startswith, optional() defaults, output preconditions.
  required_version = ">= 1.5.0"

  # Exact releases: the ones whose schemas `make tf-validate` checks every resource against offline
  # (tools/tf_validate/providers.yaml). Move a pin only together with the schema pinned there.
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "6.50.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "2.7.1"
    }
    # Generates the secrets whose value is ours (Fernet keys, the URL-signing secret).
    random = {
      source  = "hashicorp/random"
      version = "3.7.2"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

# API Gateway resources exist only in the beta provider.
provider "google-beta" {
  project = var.project_id
  region  = var.region
}
