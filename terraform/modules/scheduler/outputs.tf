output "service_account_member" {
  description = "IAM member string of the scheduler's identity, for the cleanup function's invoker binding."
  value       = "serviceAccount:${google_service_account.scheduler.email}"
}

output "job_name" {
  description = "Name of the Cloud Scheduler job (run it by hand with `gcloud scheduler jobs run`)."
  value       = google_cloud_scheduler_job.cleanup.name
}
