"""Developer tools run from the Makefile (not deployed with any function)."""
