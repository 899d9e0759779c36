"""Dagster layer: SourceSpecs → assets, checks, schedules, sensors, resources."""
