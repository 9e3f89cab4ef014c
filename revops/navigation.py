"""The navigation bar, by role. Apps add their entries here as they gain pages."""

from __future__ import annotations

from dataclasses import dataclass

from revops.models import Role

EVERYONE = frozenset(Role.values)


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    roles: frozenset[str]
    # Paths under this prefix highlight the item.
    prefix: str


NAV_ITEMS: tuple[NavItem, ...] = (
    NavItem("Home", "home", EVERYONE, "/"),
    NavItem("Alerts", "usage:alerts", frozenset({Role.CSM, Role.LEADER, Role.ADMIN}), "/alerts/"),
    NavItem("Book", "usage:book", frozenset({Role.AE, Role.CSM, Role.LEADER, Role.ADMIN}), "/book/"),
    NavItem(
        "Opportunities",
        "usage:opportunities",
        frozenset({Role.AE, Role.CSM, Role.LEADER, Role.ADMIN}),
        "/opportunities/",
    ),
    NavItem("Metrics", "usage:company", frozenset({Role.LEADER, Role.FINANCE, Role.ADMIN, Role.PRODUCT}), "/metrics/"),
    NavItem(
        "Statements",
        "comp:statements",
        frozenset({Role.AE, Role.CSM, Role.LEADER, Role.FINANCE, Role.ADMIN}),
        "/comp/statements/",
    ),
    # Plans only: statements have their own item, so this one highlights on /comp/plans/.
    NavItem("Comp", "comp:plans", frozenset({Role.LEADER, Role.FINANCE, Role.ADMIN}), "/comp/plans/"),
    NavItem(
        "Forecast",
        "forecasting:forecast",
        frozenset({Role.AE, Role.CSM, Role.LEADER, Role.FINANCE, Role.ADMIN, Role.PRODUCT}),
        "/forecasts/",
    ),
    NavItem("Planning", "forecasting:cohorts", frozenset({Role.LEADER, Role.FINANCE, Role.ADMIN}), "/planning/"),
    # Product managers' usage, adoption and release verdicts (reviews' analysis pages).
    NavItem(
        "Product", "reviews:analysis_product", frozenset({Role.PRODUCT, Role.LEADER, Role.ADMIN}), "/reviews/analysis/"
    ),
    NavItem("Reviews", "reviews:index", EVERYONE, "/reviews/"),
    NavItem("People", "people", EVERYONE, "/people/"),
    NavItem("Data", "usage:imports", frozenset({Role.FINANCE, Role.ADMIN}), "/data/"),
    NavItem("System", "system_status", frozenset({Role.ADMIN}), "/system/"),
)


def items_for(role: str) -> list[NavItem]:
    return [item for item in NAV_ITEMS if role in item.roles]
