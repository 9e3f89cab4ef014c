from __future__ import annotations

from revops.import_command import ImportCommand
from usage.ingestion.reference_import import import_releases


class Command(ImportCommand):
    help = (
        "Import releases from a CSV file, creating or updating them by name. "
        "Columns: date,name[,meters][,notes]. "
        "Any invalid row: nothing is imported, every problem is printed to stderr, exit status 1. "
        "See docs/imports.md."
    )
    noun = "Releases"
    importer = staticmethod(import_releases)
