output "secrets" {
  description = "Created secrets by key: {secret_id, env_var}, for the function module's `secrets` input. Known only once each secret has its first version, so no function mounts a secret that has none."
  value = {
    for key, secret in google_secret_manager_secret.this :
    key => { secret_id = secret.secret_id, env_var = var.secrets[key].env_var }
  }

  # A function mounting `latest` of a secret without any version fails to deploy.
  depends_on = [google_secret_manager_secret_version.first]
}
