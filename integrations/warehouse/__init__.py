"""Warehouse sources: usage pulled with SQL from PostgreSQL, Snowflake or BigQuery (docs/warehouse.md)."""
