# The data bucket (uploads, Parquet copies, results, charts, exports) and the bucket for function
# source zips. Both private: uniform bucket-level access (no object ACLs) and public access prevention
# enforced, so no object can be made public even by mistake; browsers get signed URLs.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

resource "google_storage_bucket" "data" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-data"
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  versioning {
    enabled = var.versioning
  }

  # Temporary objects (PDF exports, staging) expire on their own, even if cleanup never runs.
  lifecycle_rule {
    condition {
      age            = 1
      matches_prefix = [var.tmp_prefix]
    }
    action {
      type = "Delete"
    }
  }

  # Interrupted multipart uploads otherwise linger and are billed.
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  # Signed URLs are used by the browser: GET for chart HTML/PNG and dataset downloads, PUT for direct
  # uploads (POST /api/v1/uploads), whose signed headers the preflight must allow.
  cors {
    origin          = var.cors_origins
    method          = ["GET", "HEAD", "PUT"]
    response_header = ["Content-Type", "Content-Length", "Content-Disposition", "ETag", "x-goog-content-length-range"]
    max_age_seconds = 3600
  }
}

resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-fn-source"
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels
}
