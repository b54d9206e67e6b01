"""The Dagster layer: thin assets, checks, jobs, schedules and resources over the library."""
