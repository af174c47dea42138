terraform {
  # 1.5: strcontains/startswith, optional() defaults, output preconditions.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
    # Generates the secrets whose value is ours (Fernet keys, the URL-signing secret).
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
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
