output "queue" {
  description = "The queue as {name, location}, for queue-level IAM grants."
  value = {
    name     = google_cloud_tasks_queue.pipeline.name
    location = google_cloud_tasks_queue.pipeline.location
  }
}

output "queue_path" {
  description = "Full queue path (projects/<p>/locations/<r>/queues/<q>) that the Cloud Tasks client enqueues to."
  value       = google_cloud_tasks_queue.pipeline.id
}

output "target_url" {
  description = "URL each task is sent to (the agents function), also the OIDC audience."
  value       = var.target_url
}

output "max_attempts" {
  description = "Deliveries of one stage before the queue drops it: the agents function must know which is its last (TASKS_MAX_ATTEMPTS)."
  value       = var.max_attempts
}

output "invoker_email" {
  description = "Email of the service account named in each task's OIDC token."
  value       = google_service_account.invoker.email
}

output "invoker_member" {
  description = "IAM member string of the task invoker, for the agents function's invoker binding."
  value       = "serviceAccount:${google_service_account.invoker.email}"
}

output "invoker_name" {
  description = "Resource name of the task invoker, for the actAs grants of the enqueuing functions."
  value       = google_service_account.invoker.name
}
