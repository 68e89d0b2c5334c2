"""A local SMTP sink for development and tests: every message kept as a file, none delivered."""
