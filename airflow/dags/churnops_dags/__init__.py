"""Helpers for the ChurnOps DAGs: kick off one event per DAG run and report its outcome.

This package sits in the DAG folder (which Airflow puts on `sys.path`) and is listed in
`.airflowignore`, so the DAG processor imports it but never parses it as DAG files.
"""
