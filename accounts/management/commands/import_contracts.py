from __future__ import annotations

from accounts.imports import import_contracts
from revops.import_command import ImportCommand


class Command(ImportCommand):
    help = (
        "Import contracts from a CSV file, creating or updating them by external_id. "
        "Columns: external_id,account,pricing_model,signed_on,start_on,end_on,committed_arr,tcv[,included_units][,base_fee][,credits][,deal_desk_estimate][,ae_estimate][,ramp_days][,amends]. "
        "Any invalid row: nothing is imported, every problem is printed to stderr, exit status 1. "
        "See docs/imports.md."
    )
    noun = "Contracts"
    importer = staticmethod(import_contracts)
