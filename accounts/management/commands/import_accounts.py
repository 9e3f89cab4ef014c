from __future__ import annotations

from accounts.imports import import_accounts
from revops.import_command import ImportCommand


class Command(ImportCommand):
    help = (
        "Import accounts from a CSV file, creating or updating them by external_id. "
        "Columns: external_id,name,segment[,parent_external_id][,region][,industry][,status]. "
        "Any invalid row: nothing is imported, every problem is printed to stderr, exit status 1. "
        "See docs/imports.md."
    )
    noun = "Accounts"
    importer = staticmethod(import_accounts)
