"""Forms that create something carry a one-time token, so a second submission is a no-op.

A page renders ``{% submission_token %}`` (a hidden ``submission`` field with a fresh UUID)
in such a form; the service that applies the post calls ``first_submission`` **inside its
own transaction**. The token row commits with the change, or rolls back with it (a form
refused for bad input can be corrected and sent again). A concurrent duplicate waits on the
token's primary key until the first commits, then finds it: exactly one is applied.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.db import connection, transaction
from django.utils import timezone

FIELD = "submission"
KEPT_FOR = dt.timedelta(days=2)


class AlreadySubmitted(Exception):
    """This form post was applied before; nothing was done this time."""


def new_token() -> str:
    return str(uuid.uuid4())


def token_from(data) -> uuid.UUID | None:
    """The token of a posted form; None when the form has none (or it is not a UUID)."""
    try:
        return uuid.UUID(str(data.get(FIELD, "")).strip())
    except ValueError:
        return None


def first_submission(token: uuid.UUID | None, *, user) -> None:
    """Record ``token`` as applied by ``user``; raise ``AlreadySubmitted`` if it already was.

    Must run inside the transaction that applies the form. Without a token (an older page,
    a script) there is nothing to recognise, and the post is applied.
    """
    if token is None:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("first_submission must run inside the transaction that applies the form")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO revops_formsubmission (token, user_id, created_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (token) DO NOTHING",
            [token, user.pk, timezone.now()],
        )
        if cursor.rowcount == 0:
            raise AlreadySubmitted(str(token))


def forget_old_submissions(*, now: dt.datetime | None = None) -> int:
    """Tokens older than ``KEPT_FOR`` (no one re-submits a two-day-old form)."""
    from revops.models import FormSubmission

    deleted, _ = FormSubmission.objects.filter(created_at__lt=(now or timezone.now()) - KEPT_FOR).delete()
    return deleted
