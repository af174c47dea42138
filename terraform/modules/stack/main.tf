# One whole deployment of ConvoInsight: wiring only. What each piece is lives in terraform/modules/<piece>/;
# each terraform/environments/<env>/ calls this module once with its own values.

locals {
  environment = var.environment
  name_prefix = "convoinsight-${local.environment}"
  repo_root   = abspath("${path.module}/../../..")
  routes_file = "${local.repo_root}/common/gateway_routes.yaml"
  labels      = merge(var.labels, { app = "convoinsight", environment = local.environment })

  # Which functions exist is read from the source tree: every functions/<name>/main.py is deployed.
  # The routes file cannot be the list: agents (Cloud Tasks) and cleanup (Scheduler) are not routed,
  # and a function may be deployed before it is routed. A function routed but not present fails the
  # plan (modules/api_gateway/openapi); a new directory needs no edit here. Sizing comes from
  # var.function_overrides, data access from modules/function_access.
  function_names = toset([for main in fileset("${local.repo_root}/functions", "*/main.py") : dirname(main)])

  function_settings = {
    for name in local.function_names : name => merge(
      var.function_defaults,
      { for key, value in try(var.function_overrides[name], {}) : key => value if value != null },
    )
  }

  # Where Cloud Tasks sends pipeline stages (TASKS_TARGET_URL), also their OIDC audience: the agents
  # service's deterministic run.app URL. Not module.functions["agents"].uri: every function, agents
  # included, gets this in its environment, so reading it from the functions' own outputs would be a
  # dependency cycle (one for_each call cannot feed an instance's output into another's input). Nor the
  # cloudfunctions.net URL: agents accepts internal traffic only (ALLOW_INTERNAL_ONLY), and the run.app
  # URL is the one Cloud Tasks reaches as internal traffic. Cloud Run gives every service this URL when
  # "<service>-<project number>" fits a DNS label (63 characters; the tasks module checks that).
  agents_service = "agents-${local.environment}"
  agents_url     = "https://${local.agents_service}-${data.google_project.this.number}.${var.region}.run.app"

  # Every function's environment, identical for every function so each builds the same Settings. The
  # constant settings and the names filled here are listed in common/function_env.yaml, which the tests
  # start each function with (tests/integration/test_cloud_environment.py); the stack's tests check that
  # this map fills exactly the names the file lists.
  function_env_file = yamldecode(file("${local.repo_root}/common/function_env.yaml"))
  function_env = merge(
    local.function_env_file.constant,
    {
      ENVIRONMENT           = local.environment
      CORS_ORIGINS          = join(",", var.cors_origins)
      ADMIN_USERS           = join(",", var.admin_users)
      GOOGLE_CLOUD_PROJECT  = var.project_id
      GCS_BUCKET            = module.storage.data_bucket_name
      METADATA_BACKEND      = var.cloud_sql_enabled ? "sql" : "firestore"
      FIRESTORE_DATABASE    = module.firestore.database_id
      COLLECTION_PREFIX     = var.collection_prefix
      TASKS_QUEUE           = module.tasks.queue_path
      TASKS_TARGET_URL      = module.tasks.target_url
      TASKS_SERVICE_ACCOUNT = module.tasks.invoker_email
      # The queue's own retry count: a stage's last delivery ends its question if it cannot record a result.
      TASKS_MAX_ATTEMPTS      = tostring(module.tasks.max_attempts)
      CACHE_BACKEND           = var.redis_enabled || var.redis_url != "" ? "redis" : "memory"
      MAX_UPLOAD_BYTES        = tostring(var.max_upload_bytes)
      DIRECT_UPLOAD_MAX_BYTES = tostring(var.direct_upload_max_bytes)
      SESSION_RETENTION_DAYS  = tostring(var.session_retention_days)
      LOG_LEVEL               = var.log_level
      LLM_DEFAULT_MODEL       = var.llm_default_model
      # Links the original API's frontend fetches (listings' signed_url). The gateway's own host cannot
      # go here: the gateway is built from the functions' URLs, so its hostname is known only after them
      # (a cycle). Empty makes the legacy function use the request's X-Forwarded-Host (the gateway).
      PUBLIC_BASE_URL = var.public_base_url
    },
    # The operator's own Redis; modules/redis's URL holds its AUTH string and goes as a secret instead.
    var.redis_url == "" ? tomap({}) : tomap({ REDIS_URL = var.redis_url }),
    var.cloud_sql_enabled ? tomap({ CLOUD_SQL_INSTANCE = module.cloud_sql[0].connection_name }) : tomap({}),
  )

  # Every function egresses to private ranges through this connector (Redis's private address).
  vpc_connector = var.redis_enabled ? module.redis[0].vpc_connector : var.vpc_connector

  # Connection strings that hold a credential (Redis's AUTH string, the database password): secrets, made by
  # a second call of modules/secrets, mounted like the others. Only the pieces turned on have one.
  connection_secrets = merge(
    var.redis_enabled ? tomap({ redis_url = {
      env_var     = "REDIS_URL"
      description = "URL of the Memorystore instance with its AUTH string (redis://:<auth>@host:port/0); made by modules/redis."
    } }) : tomap({}),
    var.cloud_sql_enabled ? tomap({ database_url = {
      env_var     = "DATABASE_URL"
      description = "SQLAlchemy URL of the Cloud SQL metadata database with its user's password; made by modules/cloud_sql."
    } }) : tomap({}),
  )
  connection_secret_values = merge(
    var.redis_enabled ? tomap({ redis_url = module.redis[0].redis_url }) : tomap({}),
    var.cloud_sql_enabled ? tomap({ database_url = module.cloud_sql[0].database_url }) : tomap({}),
  )

  # The access profiles plus what the optional pieces need: every function uses the cache (rate limits);
  # the functions that read or write metadata (those with a datastore role) need the SQL database instead.
  function_grants = {
    for name in local.function_names : name => merge(module.function_access.grants[name], {
      secrets = concat(
        module.function_access.grants[name].secrets,
        var.redis_enabled ? ["redis_url"] : [],
        var.cloud_sql_enabled && module.function_access.grants[name].firestore_role != null ? ["database_url"] : [],
      )
    })
  }

  # Who may invoke each function: the gateway for routed ones, Cloud Tasks for agents, Scheduler for
  # cleanup. Keys are static labels so the bindings can be planned before the accounts exist.
  invoker_members = {
    for name in local.function_names : name => merge(
      contains(module.api_gateway.routed_functions, name) ? tomap({ "api-gateway" = module.api_gateway.service_account_member }) : tomap({}),
      name == "agents" ? tomap({ "cloud-tasks" = module.tasks.invoker_member }) : tomap({}),
      name == "cleanup" ? tomap({ "cloud-scheduler" = module.scheduler.service_account_member }) : tomap({}),
    )
  }
}

# The project number, for the agents service's deterministic URL (local.agents_url).
data "google_project" "this" {
  project_id = var.project_id
}

module "project_services" {
  source = "../project_services"

  project_id = var.project_id
  optional_services = concat(
    var.redis_enabled ? ["compute.googleapis.com", "redis.googleapis.com", "vpcaccess.googleapis.com"] : [],
    var.cloud_sql_enabled ? ["sqladmin.googleapis.com"] : [],
  )
}

module "storage" {
  source = "../storage"

  project_id    = var.project_id
  location      = var.region
  name_prefix   = local.name_prefix
  cors_origins  = var.cors_origins
  force_destroy = var.force_destroy_buckets
  labels        = local.labels

  depends_on = [module.project_services]
}

module "firestore" {
  source = "../firestore"

  project_id        = var.project_id
  location_id       = var.firestore_location
  database_id       = var.firestore_database
  create_database   = var.create_firestore_database
  delete_protection = var.firestore_delete_protection
  collection_prefix = var.collection_prefix

  depends_on = [module.project_services]
}

module "tasks" {
  source = "../tasks"

  project_id  = var.project_id
  region      = var.region
  name_prefix = local.name_prefix
  environment = local.environment
  target_url  = local.agents_url
  # No more stages in flight than agents instances can take at once (beyond that a delivery bounces with 429
  # and waits for its backoff); the rate is the capacity model's (terraform/README.md, "Capacity model").
  max_dispatches_per_second = var.pipeline_dispatches_per_second
  max_concurrent_dispatches = try(local.function_settings["agents"].max_instances * local.function_settings["agents"].concurrency, 10)

  depends_on = [module.project_services]
}

module "secrets" {
  source = "../secrets"

  project_id  = var.project_id
  name_prefix = local.name_prefix
  labels      = local.labels
  # Generated ones (Fernet keys, URL-signing secret) need no value; the provider keys come from the operator.
  values = { default_llm_api_key = var.llm_default_api_keys }

  depends_on = [module.project_services]
}

module "redis" {
  source = "../redis"
  count  = var.redis_enabled ? 1 : 0

  project_id     = var.project_id
  region         = var.region
  name_prefix    = local.name_prefix
  tier           = var.redis_tier
  memory_size_gb = var.redis_memory_size_gb
  network        = var.redis_network
  connector_cidr = var.redis_connector_cidr
  labels         = local.labels

  depends_on = [module.project_services]
}

module "cloud_sql" {
  source = "../cloud_sql"
  count  = var.cloud_sql_enabled ? 1 : 0

  project_id        = var.project_id
  region            = var.region
  name_prefix       = local.name_prefix
  tier              = var.cloud_sql_tier
  availability_type = var.cloud_sql_availability_type
  labels            = local.labels

  depends_on = [module.project_services]
}

module "connection_secrets" {
  source = "../secrets"

  project_id  = var.project_id
  name_prefix = local.name_prefix
  labels      = local.labels
  secrets     = local.connection_secrets
  values      = local.connection_secret_values

  depends_on = [module.project_services]
}

module "function_access" {
  source = "../function_access"

  function_names = local.function_names
}

module "functions" {
  source   = "../function"
  for_each = local.function_names

  project_id            = var.project_id
  region                = var.region
  environment           = local.environment
  name                  = each.key
  repo_root             = local.repo_root
  source_bucket         = module.storage.source_bucket_name
  build_service_account = var.build_service_account
  labels                = local.labels

  environment_variables = local.function_env
  secrets               = merge(module.secrets.secrets, module.connection_secrets.secrets)
  vpc_connector         = local.vpc_connector
  cloud_sql_instance    = local.function_grants[each.key].firestore_role != null ? one(module.cloud_sql[*].instance_name) : null

  access                       = local.function_grants[each.key]
  data_bucket_name             = module.storage.data_bucket_name
  firestore_database           = module.firestore.database_id
  tasks_queue                  = module.tasks.queue
  task_invoker_service_account = module.tasks.invoker_name
  invoker_members              = local.invoker_members[each.key]

  memory          = local.function_settings[each.key].memory
  cpu             = local.function_settings[each.key].cpu
  timeout_seconds = local.function_settings[each.key].timeout_seconds
  min_instances   = local.function_settings[each.key].min_instances
  max_instances   = local.function_settings[each.key].max_instances
  concurrency     = local.function_settings[each.key].concurrency
  ingress         = local.function_settings[each.key].ingress

  depends_on = [module.project_services]
}

module "api_gateway" {
  source = "../api_gateway"

  project_id          = var.project_id
  region              = var.region
  environment         = local.environment
  name_prefix         = local.name_prefix
  firebase_project_id = coalesce(var.firebase_project_id, var.project_id)
  routes_file         = local.routes_file
  backends            = { for name, function in module.functions : name => { url = function.uri, deadline = function.timeout_seconds } }
  labels              = local.labels

  depends_on = [module.project_services]
}

module "metrics" {
  source = "../metrics"

  project_id  = var.project_id
  name_prefix = local.name_prefix
  environment = local.environment

  depends_on = [module.project_services]
}

# The functions' audit log lines (common/audit) in a log bucket of their own, with its own retention.
module "audit_log" {
  source = "../audit_log"

  project_id     = var.project_id
  name_prefix    = local.name_prefix
  environment    = local.environment
  retention_days = var.audit_log_retention_days
  locked         = var.audit_log_locked

  depends_on = [module.project_services]
}

module "scheduler" {
  source = "../scheduler"

  project_id               = var.project_id
  region                   = var.region
  environment              = local.environment
  name_prefix              = local.name_prefix
  target_url               = try(module.functions["cleanup"].uri, "")
  schedule                 = var.cleanup_schedule
  attempt_deadline_seconds = min(try(local.function_settings["cleanup"].timeout_seconds, 540), 1800)

  depends_on = [module.project_services]
}
