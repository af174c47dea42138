# State lives in a GCS bucket shared by the team (versioned, so a bad apply can be rolled back). The
# block is partial: the bucket differs per project, so it comes from backend.hcl at init
# (`make tf-init ENV=dev`, i.e. terraform init -backend-config=backend.hcl; copy backend.hcl.example).

terraform {
  backend "gcs" {}
}
