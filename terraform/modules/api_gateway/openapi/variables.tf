variable "title" {
  description = "API title written into the document's info block."
  type        = string
}

variable "firebase_project_id" {
  description = "Firebase project whose ID tokens the gateway accepts: sets the JWT issuer (https://securetoken.google.com/<id>) and audience."
  type        = string
}

variable "routes_file" {
  description = "Path of common/gateway_routes.yaml, the routing table the local emulator also reads, so cloud and local routing cannot disagree."
  type        = string
}

variable "legacy_paths" {
  description = "Paths of the original API served by the routes file's `fallback` function. Listed explicitly: API Gateway has no catch-all, and an unlisted path should be a 404 at the gateway rather than reach a function."
  type        = list(string)
  nullable    = false
  default = [
    "/health",
    "/",
    "/datasets",
    "/datasets/{rest=**}",
    "/upload_datasets/{rest=**}",
    "/domains",
    "/domains/{rest=**}",
    "/query",
    "/query/cancel",
    "/suggest",
    "/speech-to-text",
    "/sessions",
    "/sessions/{rest=**}",
    "/charts/{rest=**}",
    "/files/{rest=**}",
    "/validate-key",
    "/update-provider-key",
    "/delete-provider-key",
    "/get-provider-keys",
    "/set-active-config",
    "/litellm/models",
    "/litellm/providers",
    "/llm/registry",
    "/pg/save",
    "/pg/get",
    "/pg/test",
  ]
}

variable "public_paths" {
  description = "Paths answered without a Firebase ID token: health checks, the API description, the legacy service banner, and the original frontend's chart and dataset-file URLs (/charts/..., /files/...: HMAC-signed, the signature is the permission, and the function reads no identity there). Every other operation requires one."
  type        = list(string)
  nullable    = false
  default     = ["/", "/health", "/api/v1/health", "/api/v1/health/{rest=**}", "/api/v1/openapi.json", "/charts/{rest=**}", "/files/{rest=**}"]
}

variable "methods" {
  description = "HTTP methods routed on every path (lower case); OPTIONS is always added, without authentication, for CORS preflight."
  type        = list(string)
  nullable    = false
  default     = ["get", "post", "put", "patch", "delete"]
}

variable "backends" {
  description = "Deployed functions by name: {url, deadline}. url is the function's HTTPS address; deadline (seconds) is how long the gateway waits for it."
  type = map(object({
    url      = string
    deadline = number
  }))
}
