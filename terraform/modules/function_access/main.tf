# What each function's own service account may touch, and why. Kept here, once, so dev and prod cannot
# drift apart; modules/function turns a profile into IAM grants on the one bucket, database, queue,
# service account or secret concerned. A function without a profile gets no grant at all: it can
# start and answer, and read nothing. Pure data, no provider.
#
# Fields: bucket_role (data bucket), firestore_role (the one database), enqueue_tasks / delete_tasks
# (pipeline queue), act_as_task_invoker (name the task-invoker account in a task's OIDC token),
# sign_urls (sign V4 URLs as itself), secrets (Secret Manager keys mounted as environment variables).

locals {
  profiles = {
    health = {
      # /api/v1/health/ready pings the metadata store; a read is enough. No blobs, no secrets.
      firestore_role = "roles/datastore.viewer"
    }

    datasets = {
      # Writes uploads, their Parquet copy and profile; reads previews; deletes files and domains.
      bucket_role = "roles/storage.objectAdmin"
      # Dataset and domain records.
      firestore_role = "roles/datastore.user"
      # A direct upload answers with a signed PUT URL (POST /api/v1/uploads).
      sign_urls = true
      # The upload's commit link is signed and checked with URL_SIGNING_SECRET.
      secrets = ["url_signing_secret"]
    }

    sessions = {
      # PDF export reads the session's charts and writes the PDF under tmp/; deleting a session deletes
      # its stored results and charts.
      bucket_role = "roles/storage.objectAdmin"
      # Sessions and their history turns.
      firestore_role = "roles/datastore.user"
      # The export is handed out as a signed URL.
      sign_urls = true
    }

    queries = {
      # Query jobs, the answer cache's dataset versions, progress for status and event streams.
      firestore_role = "roles/datastore.user"
      # Submitting a query enqueues the `plan` stage ...
      enqueue_tasks = true
      # ... and cancelling it deletes the stages still queued.
      delete_tasks = true
      # The task's OIDC token names the task invoker.
      act_as_task_invoker = true
      # A request's own API key is kept encrypted on the job while the question runs; result download
      # links are signed and checked with URL_SIGNING_SECRET.
      secrets = ["fernet_keys", "url_signing_secret"]
    }

    agents = {
      # Reads dataset Parquet files; writes result tables and rendered charts.
      bucket_role = "roles/storage.objectAdmin"
      # Moves job state with compare-and-set, appends history, fills the answer cache.
      firestore_role = "roles/datastore.user"
      # Each stage enqueues the next (manipulate -> visualize + analyze -> compile) ...
      enqueue_tasks = true
      # ... with the same OIDC identity that Cloud Tasks used to call it.
      act_as_task_invoker = true
      # Calls the LLM: decrypts the user's stored provider key (Fernet), or uses the default key. An
      # answer's chart links fall back to URL_SIGNING_SECRET when the bucket cannot sign them.
      secrets = ["fernet_keys", "default_llm_api_key", "url_signing_secret"]
    }

    postgres = {
      # Saved connections. No bucket: "create table from a file" reads the file from the request itself.
      firestore_role = "roles/datastore.user"
      # Connection passwords are stored encrypted.
      secrets = ["fernet_keys"]
    }

    llm = {
      # Provider keys (encrypted) and the active model per user.
      firestore_role = "roles/datastore.user"
      # Encrypts keys on save, decrypts them to validate; transcription falls back to the server's key.
      secrets = ["fernet_keys", "default_llm_api_key"]
    }

    charts = {
      # Lists and deletes stored charts.
      bucket_role = "roles/storage.objectAdmin"
      # Chart records.
      firestore_role = "roles/datastore.user"
      # Hands charts out as signed URLs, and serves the ones signed with URL_SIGNING_SECRET.
      sign_urls = true
      secrets   = ["url_signing_secret"]
    }

    prompts = {
      # Prompt overrides and their versions live in the metadata store; prompt files ship in the zip.
      firestore_role = "roles/datastore.user"
    }

    legacy = {
      # The original API's routes in one function: uploads, previews, deletes (/datasets,
      # /upload_datasets, /domains) and chart files (/charts).
      bucket_role = "roles/storage.objectAdmin"
      # Every legacy resource has records.
      firestore_role = "roles/datastore.user"
      # Upload answers and /charts carry signed URLs.
      sign_urls = true
      # Synchronous POST /query submits the same pipeline job ...
      enqueue_tasks       = true
      act_as_task_invoker = true
      # ... and /query/cancel deletes its queued stages.
      delete_tasks = true
      # Provider-key routes and /pg/* encrypt and decrypt; /suggest calls the LLM directly; listings and
      # chart pages carry links signed with URL_SIGNING_SECRET.
      secrets = ["fernet_keys", "default_llm_api_key", "url_signing_secret"]
    }

    cleanup = {
      # Deletes expired results, charts and exports (tmp/ also expires by bucket lifecycle).
      bucket_role = "roles/storage.objectAdmin"
      # Scans every tenant's expired records and deletes them.
      firestore_role = "roles/datastore.user"
      # Re-encrypts stored secrets under the first ENCRYPTION_KEYS key (key rotation).
      secrets = ["fernet_keys"]
    }
  }

  # The shape modules/function expects, with every field present.
  no_access = {
    bucket_role         = null
    firestore_role      = null
    enqueue_tasks       = false
    delete_tasks        = false
    act_as_task_invoker = false
    sign_urls           = false
    secrets             = []
  }
}
