"""Which revops account a Stripe customer is: its metadata first, then its email's domain."""

from __future__ import annotations

from dataclasses import dataclass

from integrations.models import MatchedBy


@dataclass(frozen=True)
class Match:
    account_id: int | None
    matched_by: str
    reason: str = ""


def email_domain(email: str | None) -> str:
    if not email or "@" not in email:
        return ""
    return email.rsplit("@", 1)[1].strip().lower()


def match_customer(
    customer: dict,
    *,
    metadata_key: str,
    accounts: dict[str, int],
    domains: dict[str, int],
    use_domain: bool = True,
) -> Match:
    """``accounts``: external id → account id; ``domains``: the connection's domain table."""
    named = ((customer.get("metadata") or {}).get(metadata_key) or "").strip()
    if named:
        if named in accounts:
            return Match(accounts[named], MatchedBy.METADATA)
        # An explicit id that names no account is a mistake to fix in Stripe, not a cue
        # to guess by domain (which could credit another account's revenue).
        return Match(None, MatchedBy.UNMATCHED, f"metadata {metadata_key}={named[:80]} names no revops account")
    domain = email_domain(customer.get("email"))
    if not use_domain:
        return Match(None, MatchedBy.UNMATCHED, f"no metadata {metadata_key} (matching by email domain is off)")
    if not domain:
        return Match(None, MatchedBy.UNMATCHED, f"no metadata {metadata_key} and no email address")
    if domain in domains:
        return Match(domains[domain], MatchedBy.DOMAIN)
    return Match(None, MatchedBy.UNMATCHED, f"no metadata {metadata_key}; email domain {domain} is not in the table")
