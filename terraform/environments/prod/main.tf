# The prod environment: the stack (terraform/modules/stack/) with the values where prod differs from
# the house defaults. What an operator sets per project comes from terraform.tfvars (variables.tf).

module "stack" {
  source = "../../modules/stack"

  environment = "prod"

  # A deleted prod database loses every tenant's records: refuse deletion by the API and terraform destroy.
  firestore_delete_protection = true

  project_id                = var.project_id
  region                    = var.region
  firebase_project_id       = var.firebase_project_id
  firestore_location        = var.firestore_location
  firestore_database        = var.firestore_database
  create_firestore_database = var.create_firestore_database
  collection_prefix         = var.collection_prefix
  cors_origins              = var.cors_origins
  admin_users               = var.admin_users
  llm_default_model         = var.llm_default_model
  llm_default_api_keys      = var.llm_default_api_keys
  public_base_url           = var.public_base_url
  redis_enabled             = var.redis_enabled
  redis_url                 = var.redis_url
  vpc_connector             = var.vpc_connector
  cloud_sql_enabled         = var.cloud_sql_enabled
  build_service_account     = var.build_service_account
  function_overrides        = var.function_overrides
}
