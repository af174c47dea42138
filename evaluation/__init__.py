"""The accuracy harness behind `make eval`: bundled questions with known answers, asked through the real API."""
