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
  #checkov:skip=CKV_GCP_78:Deleting a dataset or a conversation must delete it (a user's data, and SESSION_RETENTION_DAYS); every dataset version and result has a key of its own, so nothing is overwritten that versioning would save. var.versioning turns it on where wanted.
  #checkov:skip=CKV_GCP_62:Who read or wrote which object is Cloud Audit Logs' Data Access log (per principal, routed with the other logs); a usage-log bucket would need a bucket of its own and record less.
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
  #checkov:skip=CKV_GCP_78:Function zips are named by their content's hash: none is ever overwritten.
  #checkov:skip=CKV_GCP_62:Only deployments read these zips; Cloud Audit Logs record them.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-fn-source"
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  # Each deployment uploads a zip named by its hash, and a function needs its zip only while it is built:
  # old ones would pile up. A current zip deleted here is uploaded again by the next apply (same name).
  lifecycle_rule {
    condition {
      age = var.source_zip_retention_days
    }
    action {
      type = "Delete"
    }
  }
}
