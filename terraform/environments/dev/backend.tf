# State lives in a GCS bucket shared by the team (versioned, so a bad apply can be rolled back).
# Create the bucket once (see terraform/README.md), uncomment, then:
#   terraform init -backend-config="bucket=<state-bucket>"
# Without this block, state is a local file in this directory: fine for a first try, not for a team.
#
# terraform {
#   backend "gcs" {
#     prefix = "convoinsight/dev"
#   }
# }
