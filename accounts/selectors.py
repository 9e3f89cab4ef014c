"""Reads for the account page: facts, hierarchy, owners, contracts, activities, plan and billing.

Each read is one query whatever the number of rows (contracts, children, owners), so the
page's query count stays flat as an account grows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.apps import apps
from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, Q, QuerySet, Sum, When
from django.db.models.expressions import RawSQL

from accounts.models import (
    Account,
    AccountPlan,
    Activity,
    BillingDocument,
    BillingKind,
    BillingStatus,
    Contract,
    OwnerRole,
    Ownership,
)
from revops.models import Role
from revops.templatetags.fmt import in_currency

ACTIVITIES_PER_PAGE = 20
# Who may edit the joint plan: the people on the account team today (and admins).
PLAN_EDITOR_ROLES = (OwnerRole.LAND_AE, OwnerRole.EXPAND_AE, OwnerRole.CSM)

ANCESTORS_SQL = """
WITH RECURSIVE up(id, parent_id, depth) AS (
    SELECT id, parent_id, 0 FROM accounts_account WHERE id = %s
    UNION ALL
    SELECT a.id, a.parent_id, up.depth + 1 FROM accounts_account a JOIN up ON a.id = up.parent_id
    WHERE up.depth < 50
)
SELECT a.* FROM accounts_account a JOIN up ON up.id = a.id WHERE up.depth > 0 ORDER BY up.depth DESC
"""


@dataclass
class OwnerRow:
    ownership: Ownership
    current: bool


# Short names for the contracts table; the full label is the cell's title.
MODEL_SHORT = {"commit": "Commit", "hybrid": "Hybrid", "credits": "Prepaid credits", "minimum": "Minimum commit"}


@dataclass
class ContractRow:
    contract: Contract
    in_force: bool
    amended_by: list[Contract] = field(default_factory=list)

    @property
    def model_short(self) -> str:
        return MODEL_SHORT.get(self.contract.pricing_model, self.contract.get_pricing_model_display())


@dataclass
class AccountPage:
    account: Account
    ancestors: list[Account]
    children: list[Account]
    owners: dict[str, list[OwnerRow]]  # role label → rows, oldest first
    contracts: list[ContractRow]
    plan: AccountPlan | None
    can_edit_plan: bool


def _is_current(ownership: Ownership, on: dt.date) -> bool:
    return ownership.start_on <= on and (ownership.end_on is None or ownership.end_on >= on)


def account_ancestors(*, account: Account, visible: QuerySet[Account]) -> list[Account]:
    """The account's parents, root first, each marked ``visible`` or not. The page names
    and links only visible ones: an ancestor outside the viewer's scope shows as "…", so
    its name does not leak (the same rule as ``account_for``'s 404)."""
    ancestors = list(Account.objects.raw(ANCESTORS_SQL, [account.pk]))
    if ancestors:
        linked = set(visible.filter(pk__in=[a.pk for a in ancestors]).values_list("pk", flat=True))
        for ancestor in ancestors:
            ancestor.visible = ancestor.pk in linked
    return ancestors


def account_children(*, account: Account, visible: QuerySet[Account]) -> list[Account]:
    """Divisions directly below the account that the viewer may see."""
    return list(visible.filter(parent=account).order_by("name"))


def account_owners(*, account: Account, on: dt.date) -> tuple[dict[str, list[OwnerRow]], list[Ownership]]:
    rows = list(Ownership.objects.filter(account=account).select_related("person").order_by("role", "start_on"))
    by_role: dict[str, list[OwnerRow]] = {}
    for role in OwnerRole:
        role_rows = [OwnerRow(o, _is_current(o, on)) for o in rows if o.role == role.value]
        if role_rows:
            by_role[role.label] = role_rows
    return by_role, rows


SUBTREE_SQL = """
WITH RECURSIVE subtree(id, depth) AS (
    SELECT %s::bigint, 0
    UNION ALL
    SELECT a.id, s.depth + 1 FROM accounts_account a JOIN subtree s ON a.parent_id = s.id WHERE s.depth < 50
)
SELECT id FROM subtree
"""


def account_contracts(*, account: Account, on: dt.date) -> list[ContractRow]:
    """The contracts of the account **and its divisions** (the account's Committed ARR rolls
    them up, so the panel lists what the figure is made of), the account's own first."""
    contracts = list(
        Contract.objects.filter(account__in=RawSQL(SUBTREE_SQL, [account.pk]))  # noqa: S611 - constant SQL
        .select_related("amends", "account")
        .order_by(Case(When(account_id=account.pk, then=0), default=1), "account__name", "start_on", "pk")
    )
    rows = {c.pk: ContractRow(c, c.start_on <= on <= c.end_on) for c in contracts}
    for contract in contracts:
        if contract.amends_id in rows:
            rows[contract.amends_id].amended_by.append(contract)
    return list(rows.values())


def can_edit_plan(*, user, ownerships: list[Ownership], on: dt.date) -> bool:
    """Current land AE, expand AE or CSM of the account itself, or an admin."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.role == Role.ADMIN:
        return True
    return any(o.person_id == user.pk and o.role in PLAN_EDITOR_ROLES and _is_current(o, on) for o in ownerships)


def user_can_edit_plan(*, user, account: Account, on: dt.date) -> bool:
    """``can_edit_plan`` with its own query (the POST handlers, which need nothing else)."""
    if user.is_authenticated and user.role == Role.ADMIN:
        return True
    return (
        Ownership.objects.filter(account=account, person=user, role__in=PLAN_EDITOR_ROLES, start_on__lte=on)
        .filter(Q(end_on__isnull=True) | Q(end_on__gte=on))
        .exists()
    )


def account_plan(*, account: Account) -> AccountPlan | None:
    return AccountPlan.objects.filter(account=account).select_related("updated_by").first()


def account_page(*, account: Account, viewer, visible: QuerySet[Account], on: dt.date) -> AccountPage:
    """Everything the shell shows; ``visible`` is ``accounts_visible_to(viewer, on=on)``,
    computed once by the caller (it costs a query per hierarchy level for a seller)."""
    owners, ownerships = account_owners(account=account, on=on)
    return AccountPage(
        account=account,
        ancestors=account_ancestors(account=account, visible=visible),
        children=account_children(account=account, visible=visible),
        owners=owners,
        contracts=account_contracts(account=account, on=on),
        plan=account_plan(account=account),
        can_edit_plan=can_edit_plan(user=viewer, ownerships=ownerships, on=on),
    )


def activities_for(*, account: Account) -> QuerySet[Activity]:
    return Activity.objects.filter(account=account).select_related("person").order_by("-occurred_on", "-id")


def activity_page(*, account: Account, number: int | str | None) -> Page:
    """One page of the account's activities, newest first (out-of-range numbers clamp)."""
    return Paginator(activities_for(account=account), ACTIVITIES_PER_PAGE).get_page(number)


# --- Billing panel --------------------------------------------------------------------------

BILLING_DOCUMENTS_SHOWN = 50


def billing_amount(amount: Decimal, currency: str) -> str:
    """1,234.50 USD; 5,000 JPY (the currency's own decimals, its code as the unit)."""
    return in_currency(amount, currency)


@dataclass(frozen=True)
class BillingRow:
    document: BillingDocument

    @property
    def amount(self) -> str:
        return billing_amount(self.document.amount, self.document.currency)


@dataclass(frozen=True)
class BillingTotal:
    """One currency's documents: invoiced (void ones aside), paid, credited and refunded."""

    currency: str
    invoiced: Decimal
    paid: Decimal
    credited: Decimal
    refunded: Decimal

    def _text(self, value: Decimal) -> str:
        return billing_amount(value, self.currency)

    @property
    def invoiced_text(self) -> str:
        return self._text(self.invoiced)

    @property
    def paid_text(self) -> str:
        return self._text(self.paid)

    @property
    def credited_text(self) -> str:
        return self._text(self.credited)

    @property
    def refunded_text(self) -> str:
        return self._text(self.refunded)


@dataclass(frozen=True)
class BillingPanel:
    rows: list[BillingRow]  # newest first, at most BILLING_DOCUMENTS_SHOWN
    count: int  # every document of the account
    totals: list[BillingTotal]  # one per currency, by code
    connected: bool  # some billing source is connected (or has written documents)


def billing_sources_connected() -> bool:
    """Whether any billing source feeds ``BillingDocument``: a document from any source, or a
    connected Stripe account that has not synced yet (integrations, when installed)."""
    if BillingDocument.objects.exists():
        return True
    if not apps.is_installed("integrations"):
        return False
    return apps.get_model("integrations", "StripeConnection").objects.exists()


def account_billing(*, account: Account) -> BillingPanel:
    """The account's invoices, credit notes and refunds (its own; each division has its own
    panel), with totals per currency. Two queries whatever the number of documents (up to
    three more for an account without any: is a billing source connected at all)."""
    zero = Decimal("0.00")
    sums = (
        BillingDocument.objects.filter(account=account)
        .values("currency")
        .annotate(
            count=Count("id"),
            invoiced=Sum("amount", filter=Q(kind=BillingKind.INVOICE) & ~Q(status=BillingStatus.VOID), default=zero),
            paid=Sum("amount", filter=Q(kind=BillingKind.INVOICE, status=BillingStatus.PAID), default=zero),
            credited=Sum(
                "amount", filter=Q(kind=BillingKind.CREDIT_NOTE) & ~Q(status=BillingStatus.VOID), default=zero
            ),
            refunded=Sum("amount", filter=Q(kind=BillingKind.REFUND) & ~Q(status=BillingStatus.VOID), default=zero),
        )
        .order_by("currency")
    )
    totals = []
    count = 0
    for row in sums:
        count += row["count"]
        totals.append(
            BillingTotal(
                currency=row["currency"],
                invoiced=row["invoiced"],
                paid=row["paid"],
                credited=row["credited"],
                refunded=row["refunded"],
            )
        )
    rows = []
    if count:
        documents = BillingDocument.objects.filter(account=account).order_by("-issued_at", "-pk")
        rows = [BillingRow(d) for d in documents[:BILLING_DOCUMENTS_SHOWN]]
    return BillingPanel(rows=rows, count=count, totals=totals, connected=bool(count) or billing_sources_connected())
