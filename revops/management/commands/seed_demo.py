from __future__ import annotations

from django.core.management.base import BaseCommand

from revops.demo import seed_people
from revops.demo_data import DEMO_PASSWORD, DEMO_PEOPLE
from revops.models import User


class Command(BaseCommand):
    help = "Load the deterministic demo company (people and teams; later: accounts, usage, plans)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the database already has people.")

    def handle(self, *args, if_empty: bool = False, **options):
        if if_empty and User.objects.exists():
            self.stdout.write("Database already has data; demo not loaded.")
            return
        seed_people()
        self.stdout.write(self.style.SUCCESS(f"Demo loaded: {len(DEMO_PEOPLE)} people, password '{DEMO_PASSWORD}'."))
