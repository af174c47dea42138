variable "project_id" {
  description = "Google Cloud project of the secrets."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the secret ids (e.g. convoinsight-dev)."
  type        = string
}

variable "secrets" {
  description = "Secrets to create, by key: the environment variable a function reads it into and what it holds. Values are added out of band (gcloud secrets versions add), never through Terraform state."
  type = map(object({
    env_var     = string
    description = string
  }))
  default = {
    fernet_keys = {
      env_var     = "FERNET_KEYS"
      description = "Comma-separated Fernet keys, newest first (MultiFernet): encrypt stored provider keys and database passwords; rotate by adding a version with a new key in front."
    }
    default_llm_api_key = {
      env_var     = "DEFAULT_LLM_API_KEY"
      description = "API key of the default LLM provider, used when a user has not configured their own."
    }
  }
}

variable "labels" {
  description = "Labels added to every secret."
  type        = map(string)
  default     = {}
}
