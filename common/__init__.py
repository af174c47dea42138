"""Shared package of every ConvoInsight function: settings, errors, HTTP, auth, ports and services."""
