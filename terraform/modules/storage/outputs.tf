output "data_bucket_name" {
  description = "Name of the data bucket (GCS_BUCKET)."
  value       = google_storage_bucket.data.name
}

output "source_bucket_name" {
  description = "Name of the bucket holding function source zips."
  value       = google_storage_bucket.source.name
}
