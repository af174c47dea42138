output "metric_types" {
  description = "The user-defined metric types, for dashboards and alert policies."
  value = concat(
    ["logging.googleapis.com/user/${google_logging_metric.questions.name}"],
    [for metric in google_logging_metric.question_distribution : "logging.googleapis.com/user/${metric.name}"],
  )
}
