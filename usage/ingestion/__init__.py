"""Usage data in: meters' events by API and CSV, reference imports, import jobs, rollups,
quarantine and retention. Imports nothing from ``usage.signals``."""
