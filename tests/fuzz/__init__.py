"""Seeded fuzzing of the API on loopback: ``make fuzz`` (long) and ``make fuzz-ci`` (a short subset, in ``make test``).

The v1 API is fuzzed from its OpenAPI document (schemathesis); the original API's routes get mutated requests
(hypothesis). Both run against the local emulator, started by the tests on 127.0.0.1 with its own data
directory, inside a network namespace of its own (``unshare -n``) where that is possible, and behind a
loopback-only socket guard always. A run fails on any 5xx other than an honest 502/503 (a dependency that
cannot be reached) and on any error that is not in the documented shape.
"""
