"""The dashboard: server-rendered pages for people (sign-up, keys, credits, jobs, logs)."""
