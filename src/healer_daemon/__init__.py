"""The reference daemon (APScheduler jobs, HTTP API, web UI); see docs/daemon.md."""
