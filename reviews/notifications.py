"""Telling the owner of a review's action item that it is theirs (email, and their team's Slack)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.urls import reverse

from reviews.models import ActionItem
from revops.models import User


def notify_action_owner(*, action_id: int, by_id: int | None) -> dict:
    from usage.signals.notifications import post_to_slack

    action = ActionItem.objects.select_related("review", "owner__team").filter(pk=action_id).first()
    if action is None or not action.owner.is_active:
        return {"emails": 0, "slack_posts": 0}
    by = User.objects.filter(pk=by_id).first() if by_id else None
    who = by.name if by is not None else "Someone"
    url = settings.SITE_URL.rstrip("/") + reverse("reviews:detail", args=[f"{action.review.month:%Y-%m}"])
    subject = f"revops: {who} gave you an action from the {action.review.label} review (due {action.due_on})"
    body = "\n".join(
        [
            f"Hello {action.owner.get_short_name()},",
            "",
            f"{who} gave you an action item in the {action.review.label} review:",
            "",
            f"  {action.title}",
            f"  due {action.due_on:%A %B %-d, %Y}",
            "",
            f"The review: {url}",
        ]
    )
    emails = 0
    if action.owner.email:
        message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [action.owner.email])
        emails = get_connection().send_messages([message]) or 0
    posts = 0
    team = action.owner.team
    if team is not None and team.slack_webhook_url:
        text = f"*{who} gave {action.owner.name} an action* ({action.review.label} review, due {action.due_on}): {action.title}"
        posts = int(post_to_slack(team.slack_webhook_url, text))
    return {"emails": emails, "slack_posts": posts}
