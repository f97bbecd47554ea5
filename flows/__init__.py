"""Prefect flows that run the DVC pipeline; see flows/pipeline.py."""
