# Turn on the Google APIs the deployment uses. Turning them off on destroy would break anything else
# in the project that uses them, so destroy leaves them on.

terraform {
  required_providers {
    google = {
      source = "hashicorp/google"
    }
  }
}

resource "google_project_service" "this" {
  for_each = toset(concat(var.services, var.optional_services))

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
