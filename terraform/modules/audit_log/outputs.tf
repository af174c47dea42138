output "bucket_id" {
  description = "Full id of the audit log bucket (projects/.../locations/.../buckets/...), for log views and queries."
  value       = google_logging_project_bucket_config.audit.id
}

output "sink_writer_identity" {
  description = "The identity the sink writes as (none of its own for a bucket in its own project)."
  value       = google_logging_project_sink.audit.writer_identity
}
