"""Benchmark harness for rest_assets (issue 6): workloads, baselines, measurement, report.

Everything here is benchmark code only; it uses the product through its public
contract (environment variables, the Dagster code location, the emulator).
"""
