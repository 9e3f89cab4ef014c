"""People: the custom user model, teams and roles; plus platform bookkeeping."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from revops.audit import audited


class Role(models.TextChoices):
    AE = "ae", "Account executive"
    CSM = "csm", "Customer success manager"
    LEADER = "leader", "Leader"
    FINANCE = "finance", "Finance / deal desk"
    PRODUCT = "product", "Product manager"
    ADMIN = "admin", "Administrator"


# The Slack webhook URL is a secret: kept out of the audit history.
@audited(exclude=["slack_webhook_url"])
class Team(models.Model):
    name = models.CharField(max_length=120, unique=True)
    manager = models.ForeignKey(
        "revops.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_teams",
        help_text="Sees the team's books, queues and statements.",
    )
    slack_webhook_url = models.URLField(
        blank=True, help_text="Slack incoming webhook for the team's daily alert digest (blank: no Slack post)."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("role", Role.ADMIN)
        extra["is_superuser"] = True
        return self.create_user(email, password, **extra)


@audited(exclude=["password", "last_login"])
class User(AbstractBaseUser, PermissionsMixin):
    """A person who works in revops. Logs in by email; has exactly one role."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200)
    employee_id = models.CharField(
        max_length=64, blank=True, help_text="The payroll system's id for this person (the payroll export's key)."
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AE)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    started_on = models.DateField(null=True, blank=True, help_text="First day in the role; drives ramp quota relief.")

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.name or self.email

    def save(self, *args: object, **kwargs: object) -> None:
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    # The admin site is for the admin role; is_staff is derived so it cannot drift.
    @property
    def is_staff(self) -> bool:
        return self.is_active and (self.role == Role.ADMIN or self.is_superuser)

    # The admin role administers the whole site, like a superuser, without a second flag.
    def has_perm(self, perm: str, obj: object = None) -> bool:
        if self.is_active and self.role == Role.ADMIN:
            return True
        return super().has_perm(perm, obj)

    def has_module_perms(self, app_label: str) -> bool:
        if self.is_active and self.role == Role.ADMIN:
            return True
        return super().has_module_perms(app_label)

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name.split(" ")[0] if self.name else self.email

    def has_role(self, *roles: str) -> bool:
        return self.role in roles


class BeatTick(models.Model):
    """When Celery beat last got a task through the broker to a worker (see /health)."""

    name = models.CharField(max_length=64, primary_key=True)
    ticked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.ticked_at:%Y-%m-%d %H:%M:%S}"


@audited(exclude=["hashed_key", "last_used_at"])
class ApiKey(models.Model):
    """A bearer key for the HTTP API. Only a SHA-256 of the key is stored."""

    class Scope(models.TextChoices):
        EVENTS_WRITE = "events:write", "Write usage events"
        READ = "read", "Read metrics, alerts and forecasts"

    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=12, db_index=True, help_text="First characters, to recognise a key.")
    hashed_key = models.CharField(max_length=64, unique=True)
    scopes = ArrayField(models.CharField(max_length=32, choices=Scope.choices))
    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    created_by = models.ForeignKey("revops.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    acts_as = models.ForeignKey(
        "revops.User",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="api_keys",
        help_text="Whose permissions a read key reads with: it sees exactly what this person may see.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class FormSubmission(models.Model):
    """A form post that created something, by its one-time token: the same form submitted
    twice (a double click, a reload, a retried request) is recognised and not applied again."""

    token = models.UUIDField(primary_key=True)
    user = models.ForeignKey("revops.User", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return str(self.token)


class SavedView(models.Model):
    """A list's filters and sort, saved by a person under a name (``revops.saved_views``)."""

    user = models.ForeignKey("revops.User", on_delete=models.CASCADE, related_name="saved_views")
    list_key = models.CharField(max_length=40)
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=2000, blank=True, help_text="The list's query string, without the page.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["list_key", "name"]
        constraints = [models.UniqueConstraint(fields=["user", "list_key", "name"], name="savedview_user_list_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.list_key})"


class TimedRun(models.Model):
    """What every background run records about itself (CRM syncs, warehouse pulls, Stripe
    syncs, BI exports): who asked, when it was queued, started and finished."""

    requested_by = models.ForeignKey("revops.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
