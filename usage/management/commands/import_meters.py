from __future__ import annotations

from revops.import_command import ImportCommand
from usage.ingestion.reference_import import import_meters


class Command(ImportCommand):
    help = (
        "Import meters from a CSV file, creating or updating them by key. "
        "Columns: key,name,unit,unit_price[,product_line][,feature]. "
        "Re-importing a meter replaces its price tiers. "
        "Any invalid row: nothing is imported, every problem is printed to stderr, exit status 1. "
        "See docs/imports.md."
    )
    noun = "Meters"
    importer = staticmethod(import_meters)
