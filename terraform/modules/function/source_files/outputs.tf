output "files" {
  description = "Map of path inside the zip => absolute path on disk, for archive_file `source` blocks."
  value       = local.files

  precondition {
    condition     = contains(keys(local.function_files), "main.py")
    error_message = "functions/${var.function_name}/main.py does not exist under ${var.repo_root}."
  }

  precondition {
    condition     = fileexists(local.requirements)
    error_message = "Neither functions/${var.function_name}/requirements.txt nor the repository's requirements.txt exists; the build would install nothing."
  }
}
