variable "project_id" {
  description = "Google Cloud project that hosts the function."
  type        = string
}

variable "region" {
  description = "Region of the function (and of its Cloud Run service)."
  type        = string
}

variable "environment" {
  description = "Deployment name (dev, prod); suffixes the function and service account names so environments can share a project."
  type        = string
}

variable "name" {
  description = "Function name: the directory functions/<name>/ and the Python entry point `def <name>(request)` in its main.py."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]*$", var.name))
    error_message = "name must be a lower-case Python identifier (it is also the entry point)."
  }
}

variable "repo_root" {
  description = "Absolute path of the repository root; the zip is built from functions/<name>/, common/, prompts/ and requirements.txt under it."
  type        = string
}

variable "source_bucket" {
  description = "Bucket that receives the source zip (named by its hash, so a code change is a new object and a redeploy)."
  type        = string
}

variable "environment_variables" {
  description = "Plain environment variables (the settings of common/config.py). Never put secrets here: use `secrets` + `access.secrets`."
  type        = map(string)
  default     = {}
}

variable "secrets" {
  description = "Every Secret Manager secret of the deployment, by key (output `secrets` of the secrets module). Only those named in access.secrets are mounted and granted."
  type = map(object({
    secret_id = string
    env_var   = string
  }))
  default = {}
}

variable "access" {
  description = <<-EOT
    What this function's own service account may touch (see modules/function_access for the why of each):
    bucket_role (roles/storage.objectViewer | roles/storage.objectAdmin on the data bucket),
    firestore_role (roles/datastore.viewer | roles/datastore.user, conditioned to the one database),
    enqueue_tasks / delete_tasks (on the pipeline queue), act_as_task_invoker (mint OIDC tokens as the
    task invoker in Cloud Tasks), sign_urls (sign V4 URLs as itself), secrets (keys of `secrets`).
  EOT
  type = object({
    bucket_role         = optional(string)
    firestore_role      = optional(string)
    enqueue_tasks       = optional(bool, false)
    delete_tasks        = optional(bool, false)
    act_as_task_invoker = optional(bool, false)
    sign_urls           = optional(bool, false)
    secrets             = optional(list(string), [])
  })
  default = {}

  validation {
    condition     = contains(["none", "roles/storage.objectViewer", "roles/storage.objectAdmin"], coalesce(var.access.bucket_role, "none"))
    error_message = "access.bucket_role must be null, roles/storage.objectViewer or roles/storage.objectAdmin."
  }

  validation {
    condition     = contains(["none", "roles/datastore.viewer", "roles/datastore.user"], coalesce(var.access.firestore_role, "none"))
    error_message = "access.firestore_role must be null, roles/datastore.viewer or roles/datastore.user."
  }
}

variable "data_bucket_name" {
  description = "Name of the data bucket (target of access.bucket_role)."
  type        = string
  default     = null
}

variable "firestore_database" {
  description = "Firestore database id (target of access.firestore_role), e.g. `(default)`."
  type        = string
  default     = "(default)"
}

variable "tasks_queue" {
  description = "The pipeline queue ({name, location}), target of access.enqueue_tasks and access.delete_tasks."
  type = object({
    name     = string
    location = string
  })
  default = null
}

variable "task_invoker_service_account" {
  description = "Resource name (projects/<p>/serviceAccounts/<email>) of the identity Cloud Tasks presents to the agents function; target of access.act_as_task_invoker."
  type        = string
  default     = null
}

variable "invoker_members" {
  description = "Who may call this function (roles/run.invoker on its service), keyed by a static label (e.g. `api-gateway`). Service accounts only: never allUsers or allAuthenticatedUsers."
  type        = map(string)

  validation {
    condition     = alltrue([for member in values(var.invoker_members) : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "invoker_members must not contain allUsers or allAuthenticatedUsers: callers are authenticated service accounts."
  }
}

variable "memory" {
  description = "Memory per instance, e.g. 256Mi, 1Gi (more than 2Gi raises the CPU Cloud Functions allots)."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.memory))
    error_message = "memory must look like 512Mi or 2Gi."
  }
}

variable "cpu" {
  description = "vCPUs per instance (e.g. \"1\", \"2\"); null lets Cloud Functions derive it from memory."
  type        = string
  default     = null
}

variable "timeout_seconds" {
  description = "Request timeout in seconds (HTTP functions allow up to 3600); also the API Gateway deadline for this backend."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 3600
    error_message = "timeout_seconds must be between 1 and 3600."
  }
}

variable "min_instances" {
  description = "Instances kept warm (0 = scale to zero; 1+ removes cold starts at a cost)."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Upper bound on instances: caps cost and the load on Firestore and LLM providers."
  type        = number
  default     = 10
}

variable "concurrency" {
  description = "Concurrent requests per instance (values above 1 need at least 1 vCPU)."
  type        = number
  default     = 1
}

variable "ingress" {
  description = "ALLOW_ALL (needed behind API Gateway, whose requests arrive from outside the VPC; IAM still restricts callers), ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress)
    error_message = "ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "vpc_connector" {
  description = "Serverless VPC Access connector (projects/<p>/locations/<r>/connectors/<name>) for reaching Memorystore; only private ranges go through it. Null for none."
  type        = string
  default     = null
}

variable "cloud_sql_instance" {
  description = "Name of the Cloud SQL instance this function connects to (roles/cloudsql.client, conditioned to that instance alone); null for none."
  type        = string
  default     = null
}

variable "build_service_account" {
  description = "Resource name of the service account Cloud Build uses to build the function; null keeps the project default."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels added to the function."
  type        = map(string)
  default     = {}
}
