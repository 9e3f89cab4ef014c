from __future__ import annotations

from revops.import_command import ImportCommand
from revops.people_import import import_people


class Command(ImportCommand):
    help = (
        "Import people from a CSV file, creating or updating them by email. "
        "Columns: email,name,role[,team][,manager_email]. "
        "New people get an unusable password (password reset, or an admin sets one). "
        "Any invalid row: nothing is imported, every problem is printed to stderr, exit status 1. "
        "See docs/imports.md."
    )
    noun = "People"
    importer = staticmethod(import_people)

    def extra_summary(self, counts: dict) -> str:
        return f"; {counts['teams_created']} teams created, {counts['team_managers_set']} team managers set"
