output "secrets" {
  description = "Created secrets by key: {secret_id, env_var}, for the function module's `secrets` input."
  value = {
    for key, secret in google_secret_manager_secret.this :
    key => { secret_id = secret.secret_id, env_var = var.secrets[key].env_var }
  }
}
