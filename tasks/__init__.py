"""Prefect tasks: thin wrappers over plain functions in rewarm/ and models/, with failure policy declared."""
