from __future__ import annotations

from accounts.imports import import_owners
from revops.import_command import ImportCommand


class Command(ImportCommand):
    help = (
        "Import ownership periods from a CSV file, creating or updating them by (account, role, start_on). "
        "Columns: account,email,role,start_on[,end_on]. "
        "Any invalid row: nothing is imported, every problem is printed to stderr, exit status 1. "
        "See docs/imports.md."
    )
    noun = "Ownership periods"
    importer = staticmethod(import_owners)
