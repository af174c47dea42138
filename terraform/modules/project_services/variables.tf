variable "project_id" {
  description = "Google Cloud project in which the APIs are enabled."
  type        = string
}

variable "services" {
  description = "APIs the deployment uses. serviceusage and cloudresourcemanager must already be enabled for Terraform to enable these (see terraform/README.md)."
  type        = list(string)
  default = [
    "apigateway.googleapis.com",        # API Gateway
    "artifactregistry.googleapis.com",  # function images built by Cloud Build
    "cloudbuild.googleapis.com",        # builds the function source zips
    "cloudfunctions.googleapis.com",    # the functions
    "cloudscheduler.googleapis.com",    # hourly cleanup
    "cloudtasks.googleapis.com",        # pipeline stages
    "firestore.googleapis.com",         # metadata
    "iam.googleapis.com",               # service accounts
    "iamcredentials.googleapis.com",    # signBlob for V4 signed URLs, OIDC tokens
    "logging.googleapis.com",           # function logs
    "run.googleapis.com",               # gen2 functions run on Cloud Run
    "secretmanager.googleapis.com",     # keys
    "servicecontrol.googleapis.com",    # API Gateway request checks
    "servicemanagement.googleapis.com", # API Gateway managed service
    "storage.googleapis.com",           # buckets
  ]
}

variable "optional_services" {
  description = "APIs of the optional pieces that are turned on (redis.googleapis.com and vpcaccess.googleapis.com for modules/redis, sqladmin.googleapis.com for modules/cloud_sql); enabled like services."
  type        = list(string)
  default     = []
}
