"""The demo company's fixed facts (no Django imports: `make run` prints them)."""

from __future__ import annotations

from dataclasses import dataclass

DEMO_PASSWORD = "revops-demo"  # noqa: S105 - documented demo login, never used outside seed_demo
# Base32 TOTP secret of the demo finance and admin people (MFA is required for their roles).
DEMO_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # noqa: S105 - published demo secret


@dataclass(frozen=True)
class DemoPerson:
    email: str
    name: str
    role: str
    team: str | None


DEMO_TEAMS = {"Sales": "leader@example.com", "Customer Success": "leader@example.com", "Finance": None}
DEMO_PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson("leader@example.com", "Lena Leader", "leader", None),
    DemoPerson("ae@example.com", "Avery Exec", "ae", "Sales"),
    DemoPerson("csm@example.com", "Casey Success", "csm", "Customer Success"),
    DemoPerson("finance@example.com", "Finn Ance", "finance", "Finance"),
    DemoPerson("product@example.com", "Pat Product", "product", None),
    DemoPerson("admin@example.com", "Ada Admin", "admin", None),
)
