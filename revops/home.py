"""The home page's panels, by role: what each person should look at today.

Like the navigation bar, the registry names each panel's URL; the app that owns the data
owns the panel (a GET partial that renders the viewer's own scope). The home page loads
them with htmx, so one slow panel never holds up the others. A panel's view calls
``require_panel`` first: it answers 403 to roles the panel is not for.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied

from revops.models import Role


@dataclass(frozen=True)
class HomePanel:
    key: str
    title: str
    url_name: str
    roles: frozenset[str]
    wide: bool = False


HOME_PANELS: tuple[HomePanel, ...] = (
    HomePanel("triage", "Alerts to triage", "usage:home_triage", frozenset({Role.CSM, Role.LEADER, Role.ADMIN})),
    HomePanel("gates", "Under the floor before a gate", "usage:home_gates", frozenset({Role.AE, Role.CSM})),
    HomePanel("pay", "Your pay", "comp:home_pay", frozenset({Role.AE, Role.CSM})),
    HomePanel("close", "Monthly close", "comp:home_close", frozenset({Role.FINANCE, Role.ADMIN}), wide=True),
    HomePanel("data", "Data in", "usage:home_data", frozenset({Role.FINANCE, Role.ADMIN})),
    HomePanel("team", "Team book", "usage:home_team", frozenset({Role.LEADER, Role.ADMIN}), wide=True),
    HomePanel(
        "opportunities",
        "Expansion opportunities",
        "usage:home_opportunities",
        frozenset({Role.AE, Role.CSM, Role.LEADER}),
    ),
    HomePanel("review", "Monthly review", "reviews:home_review", frozenset({Role.LEADER, Role.PRODUCT, Role.FINANCE})),
    HomePanel("releases", "Latest releases", "reviews:home_releases", frozenset({Role.PRODUCT})),
    HomePanel("meters", "Meters and features", "usage:home_meters", frozenset({Role.PRODUCT, Role.LEADER}), wide=True),
)
PANELS_BY_KEY = {panel.key: panel for panel in HOME_PANELS}


def panels_for(role: str) -> list[HomePanel]:
    return [panel for panel in HOME_PANELS if role in panel.roles]


def require_panel(request, key: str) -> HomePanel:
    """The panel, if the signed-in person's role has it on their home page; else 403."""
    panel = PANELS_BY_KEY[key]
    if request.user.role not in panel.roles:
        raise PermissionDenied(f"The {panel.title} panel is not on your home page.")
    return panel
