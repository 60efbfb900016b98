"""Shared facts of the pipeline.

Imported by infra, the operator CLI, local mode and bench; imports none of them (standard library only).
"""
