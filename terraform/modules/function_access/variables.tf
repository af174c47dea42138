variable "function_names" {
  description = "Names of the functions being deployed (the directories functions/*/ that have a main.py)."
  type        = set(string)
}
