variable "repo_root" {
  description = "Absolute path of the repository root (the directory holding functions/, common/, prompts/ and requirements.txt)."
  type        = string
}

variable "function_name" {
  description = "Directory name under functions/ whose files go to the root of the zip (main.py must be among them)."
  type        = string
}

variable "shared_dirs" {
  description = "Repository directories copied into every function's zip under their own name, so `import common` and the prompt files resolve as they do locally."
  type        = list(string)
  default     = ["common", "prompts"]
}

variable "exclude_pattern" {
  description = "RE2 regular expression; a file whose path (relative to its source directory) matches it is left out of the zip: caches, bytecode and editor droppings."
  type        = string
  default     = "(^|/)(__pycache__|\\.pytest_cache|\\.mypy_cache|\\.ruff_cache)/|\\.py[co]$|(^|/)\\.DS_Store$|~$"
}
