# One Cloud Functions (gen2) HTTP function with its own service account and nothing it does not need.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
    archive = {
      source = "hashicorp/archive"
    }
  }
}

locals {
  deployed_name = "${var.name}-${var.environment}"
  member        = "serviceAccount:${google_service_account.this.email}"
  used_secrets  = { for key in var.access.secrets : key => var.secrets[key] }
  labels        = merge(var.labels, { function = var.name })
}

# --- Source -------------------------------------------------------------------------------------

module "source_files" {
  source = "./source_files"

  repo_root     = var.repo_root
  function_name = var.name
}

# One `source` block per file lets a single zip take files from several directories (functions/<name>/
# at the root, common/ and prompts/ beside it) without a staging copy. The archive provider sorts the
# entries and writes no timestamps, so the hash changes only when a file does. file() reads text only:
# a binary file in these directories makes the plan fail loudly rather than ship a broken zip.
data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.root}/.build/${local.deployed_name}.zip"

  dynamic "source" {
    for_each = module.source_files.files
    content {
      filename = source.key
      content  = file(source.value)
    }
  }
}

# Named by the zip's hash: a changed file is a new object name, which is what makes Terraform redeploy.
resource "google_storage_bucket_object" "source" {
  bucket = var.source_bucket
  name   = "${local.deployed_name}/${data.archive_file.source.output_md5}.zip"
  source = data.archive_file.source.output_path
}

# --- Identity and its grants --------------------------------------------------------------------

# One service account per function: a compromised function holds only its own grants below.
resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = "fn-${var.name}-${var.environment}"
  display_name = "ConvoInsight ${var.name} function (${var.environment})"
  description  = "Runtime identity of the ${local.deployed_name} function; its grants live in terraform/modules/function."

  lifecycle {
    precondition {
      condition     = length("fn-${var.name}-${var.environment}") <= 30
      error_message = "Service account id fn-${var.name}-${var.environment} is longer than 30 characters; shorten the function or environment name."
    }
  }
}

# Data bucket, object level only (no bucket admin): the function reads or writes blobs, never IAM or
# bucket settings. Viewer or admin per access profile.
resource "google_storage_bucket_iam_member" "data" {
  count = var.access.bucket_role == null ? 0 : 1

  bucket = var.data_bucket_name
  role   = var.access.bucket_role
  member = local.member
}

# Firestore roles only exist at project level; the condition narrows the grant to this deployment's
# database, so another database in the same project stays out of reach.
resource "google_project_iam_member" "firestore" {
  count = var.access.firestore_role == null ? 0 : 1

  project = var.project_id
  role    = var.access.firestore_role
  member  = local.member

  condition {
    title       = "convoinsight-${var.environment}-database-only"
    description = "Only the ${var.firestore_database} Firestore database."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${var.firestore_database}\""
  }
}

# Creating pipeline tasks: on this one queue, not project-wide.
resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  count = var.access.enqueue_tasks ? 1 : 0

  project  = var.project_id
  location = var.tasks_queue.location
  name     = var.tasks_queue.name
  role     = "roles/cloudtasks.enqueuer"
  member   = local.member
}

# Cancelling a query deletes its queued tasks (the enqueuer role cannot delete).
resource "google_cloud_tasks_queue_iam_member" "deleter" {
  count = var.access.delete_tasks ? 1 : 0

  project  = var.project_id
  location = var.tasks_queue.location
  name     = var.tasks_queue.name
  role     = "roles/cloudtasks.taskDeleter"
  member   = local.member
}

# A task carries an OIDC token minted for the task-invoker account; Cloud Tasks only accepts a task
# naming that account from a creator who may act as it (iam.serviceAccounts.actAs). Granted on that
# single account, which itself can do nothing but invoke the agents function.
resource "google_service_account_iam_member" "act_as_task_invoker" {
  count = var.access.act_as_task_invoker ? 1 : 0

  service_account_id = var.task_invoker_service_account
  role               = "roles/iam.serviceAccountUser"
  member             = local.member
}

# V4 signed URLs: a function has no private key, so it signs through the IAM signBlob API as itself.
# Granted on its own account only, so it cannot sign (or mint tokens) as anyone else.
resource "google_service_account_iam_member" "sign_urls" {
  count = var.access.sign_urls ? 1 : 0

  service_account_id = google_service_account.this.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.member
}

# Read access to exactly the secrets this function mounts below, nothing else: both come from the same
# access.secrets list, so a mounted secret always has its grant and a grant always has a use.
resource "google_secret_manager_secret_iam_member" "access" {
  for_each = local.used_secrets

  project   = var.project_id
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.member
}

# Connecting to the Cloud SQL metadata database (modules/cloud_sql) through the connector. The role exists
# only at project level; the condition narrows it to the one instance.
resource "google_project_iam_member" "cloud_sql_client" {
  count = var.cloud_sql_instance == null ? 0 : 1

  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = local.member

  condition {
    title       = "convoinsight-${var.environment}-sql-instance-only"
    description = "Only the ${var.cloud_sql_instance} Cloud SQL instance."
    expression  = "resource.type == \"sqladmin.googleapis.com/Instance\" && resource.name == \"projects/${var.project_id}/instances/${var.cloud_sql_instance}\""
  }
}

# --- The function -------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = local.deployed_name
  description = "ConvoInsight ${var.name} (${var.environment})"
  labels      = local.labels

  build_config {
    runtime         = "python311"
    entry_point     = var.name
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.this.email
    available_memory                 = var.memory
    available_cpu                    = var.cpu
    timeout_seconds                  = var.timeout_seconds
    min_instance_count               = var.min_instances
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = var.concurrency
    ingress_settings                 = var.ingress
    all_traffic_on_latest_revision   = true
    vpc_connector                    = var.vpc_connector
    vpc_connector_egress_settings    = var.vpc_connector == null ? null : "PRIVATE_RANGES_ONLY"
    # functions-framework serves with 4 threads per CPU unless THREADS says otherwise: as many threads as the
    # requests the instance accepts, or an instance with concurrency 80 would still answer four at a time.
    environment_variables = merge(var.environment_variables,
    var.concurrency > 1 ? { THREADS = tostring(var.concurrency) } : {})

    dynamic "secret_environment_variables" {
      for_each = local.used_secrets
      content {
        key        = secret_environment_variables.value.env_var
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret_id
        # Resolved when an instance starts: a rotated key reaches new instances without a redeploy.
        version = "latest"
      }
    }
  }

  # A revision that cannot read its secrets (or reach its database) fails to start: grant first.
  depends_on = [google_secret_manager_secret_iam_member.access, google_project_iam_member.cloud_sql_client]

  lifecycle {
    precondition {
      condition     = !(var.access.enqueue_tasks || var.access.delete_tasks) || var.tasks_queue != null
      error_message = "Function ${var.name} needs the pipeline queue (tasks_queue) for its task grants."
    }
    precondition {
      condition     = !var.access.act_as_task_invoker || var.task_invoker_service_account != null
      error_message = "Function ${var.name} needs task_invoker_service_account to act as it."
    }
    precondition {
      condition     = var.access.bucket_role == null || var.data_bucket_name != null
      error_message = "Function ${var.name} has a bucket role but no data_bucket_name."
    }
    precondition {
      condition     = alltrue([for key in var.access.secrets : contains(keys(var.secrets), key)])
      error_message = "Function ${var.name} names a secret that the secrets module does not create."
    }
  }
}

# Who may call it: only the listed service accounts (API Gateway, Cloud Tasks or Cloud Scheduler).
# Gen2 functions are Cloud Run services, so the invoker role is roles/run.invoker on that service.
resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = var.invoker_members

  project  = var.project_id
  location = google_cloudfunctions2_function.this.location
  service  = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = each.value
}
