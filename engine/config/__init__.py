"""Configuration: read once, validated into typed values, errors naming file and key.
Imports core, filters and ingest (to validate filters and time zones), nothing above.
"""
