"""Compile layer: a validated spec into a working dlt rest_api source (run time only)."""
