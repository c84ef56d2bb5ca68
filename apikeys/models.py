"""API keys: minted once, stored as an HMAC digest, authenticated in one indexed query.

Format: `nh_` (or `sk-`) + 32 base62 characters from `secrets` + 6 base62 characters of the
CRC32 of those 32 (41 characters). The checksum lets us reject typos and garbage in memory,
before any database query.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from apikeys.signals import key_revoked
from audit.models import record

if TYPE_CHECKING:
    from accounts.models import User

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
PREFIXES = ("nh_", "sk-")
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_RE = re.compile(r"^(nh_|sk-)([0-9A-Za-z]{32})([0-9A-Za-z]{6})$")
LAST_USED_WRITE_EVERY_S = 60
BUDGET_CAP_MAX = 1_000_000_000  # credits per period: far past any plan, inside the column
ROLL_GRACE_PERIODS = {
    "now": timedelta(0),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}


class Scope(models.TextChoices):
    GENERATE = "generate", "Generate images"
    OCR = "ocr", "Run OCR"
    JOBS_READ = "jobs:read", "Read jobs"
    USAGE_READ = "usage:read", "Read usage"
    KEYS_WRITE = "keys:write", "Manage API keys"
    WEBHOOKS_WRITE = "webhooks:write", "Manage webhooks"


PRESETS: dict[str, tuple[str, list[str]]] = {
    "full": ("Full access", [scope.value for scope in Scope]),
    "generate": ("Generate only", [Scope.GENERATE, Scope.OCR, Scope.JOBS_READ]),
    "read": ("Read only", [Scope.JOBS_READ, Scope.USAGE_READ]),
}


def _base62(number: int, width: int) -> str:
    chars = []
    while number:
        number, remainder = divmod(number, 62)
        chars.append(BASE62[remainder])
    return "".join(reversed(chars)).rjust(width, "0")


def checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode()), CHECKSUM_LENGTH)


def generate_secret(prefix: str = "nh_") -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"prefix must be one of {PREFIXES}")
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    return prefix + random_part + checksum(random_part)


def is_well_formed(raw: str) -> bool:
    """Format and checksum, in memory: a malformed key never reaches the database."""
    match = KEY_RE.match(raw)
    return match is not None and hmac.compare_digest(checksum(match.group(2)), match.group(3))


def digest(raw: str) -> str:
    return hmac.new(settings.API_KEY_PEPPER.encode(), raw.encode(), hashlib.sha256).hexdigest()


def hint_for(raw: str) -> str:
    return f"{raw[:7]}…{raw[-4:]}"


class KeySpend(models.Model):
    """What a key has spent in one budget period: changed only by apikeys.budget, in one
    conditional statement each, never read-then-write."""

    key = models.ForeignKey("apikeys.ApiKey", on_delete=models.CASCADE, related_name="spends")
    period_start = models.DateTimeField()
    spent = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "period_start"], name="key_spend_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.key_id} since {self.period_start}: {self.spent}"


class KeyLimitReached(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Your plan allows {limit} live API keys.")
        self.limit = limit


class KeyNameTaken(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"You already have a key named “{name}”.")


class AuthFailure(Exception):
    """Why a presented key was refused: `code` is the API error code."""

    def __init__(
        self, code: str, expired_at: datetime | None = None, key: ApiKey | None = None
    ) -> None:
        super().__init__(code)
        self.code = code
        self.expired_at = expired_at
        self.key = key  # the key row, when the secret matched one (for its owner's usage log)


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def live(self) -> ApiKeyQuerySet:
        """Keys that count against the plan's limit: not revoked, not expired."""
        now = timezone.now()
        return self.exclude(status=ApiKey.Status.REVOKED).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


# A base class made by a call is beyond mypy; the django-stubs plugin still types the
# queryset's methods on the manager.
class ApiKeyManager(models.Manager.from_queryset(ApiKeyQuerySet)):  # type: ignore[misc]
    def limit_for(self, user: User) -> int:
        """How many live keys the user's plan allows."""
        from billing.models import Plan, plan_of

        return (plan_of(user) or Plan()).max_api_keys

    def mint(
        self,
        user: User,
        *,
        name: str,
        scopes: list[str],
        expires_at: datetime | None = None,
        prefix: str = "nh_",
        created_by: User | None = None,
        rate_per_minute: int | None = None,
        budget_credits: int | None = None,
        budget_period: str = "month",
    ) -> tuple[ApiKey, str]:
        """Create a key; returns it with its secret, which is never available again."""
        secret = generate_secret(prefix)
        with transaction.atomic():
            # Lock the owner so two concurrent creates cannot both pass the limit check.
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            limit = self.limit_for(user)
            if self.filter(user=user).live().count() >= limit:
                raise KeyLimitReached(limit)
            try:
                with transaction.atomic():
                    key = self.create(
                        user=user,
                        name=name,
                        scopes=sorted(set(scopes)),
                        expires_at=expires_at,
                        digest=digest(secret),
                        hint=hint_for(secret),
                        created_by=created_by or user,
                        rate_per_minute=rate_per_minute,
                        budget_credits=budget_credits,
                        budget_period=budget_period,
                    )
            except IntegrityError:
                raise KeyNameTaken(name) from None
            record(user.pk, "key.created", key.label, scopes=" ".join(key.scopes))
        return key, secret

    def authenticate(self, raw: str) -> ApiKey:
        """The active key for `raw`, with its owner and plan, in one query; else AuthFailure."""
        if not is_well_formed(raw):
            raise AuthFailure("INVALID_API_KEY")
        presented = digest(raw)
        key = _auth_lookup(presented)
        if key is None:
            raise AuthFailure("INVALID_API_KEY")
        if key.status != ApiKey.Status.ACTIVE:
            raise AuthFailure("INVALID_API_KEY", key=key)
        now = timezone.now()
        # Not the current secret: the one before a roll, valid until its grace ends.
        previous = not hmac.compare_digest(key.digest, presented)
        if previous and (key.previous_valid_until is None or key.previous_valid_until <= now):
            raise AuthFailure("INVALID_API_KEY", key=key)
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthFailure("EXPIRED_API_KEY", expired_at=key.expires_at, key=key)
        key.presented_previous_secret = previous
        return key


class BudgetPeriod(models.TextChoices):
    DAY = "day", "Day (UTC)"
    WEEK = "week", "Week (from Monday, UTC)"
    MONTH = "month", "Calendar month (UTC)"
    BILLING = "billing", "Billing period"


class ApiKey(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DISABLED = "disabled", "Disabled"
        REVOKED = "revoked", "Revoked"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    # HMAC-SHA256(pepper, full key), hex. Never the key itself.
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=16, editable=False)
    scopes = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # After a roll, the old secret keeps working until previous_valid_until.
    previous_digest = models.CharField(
        max_length=64, unique=True, null=True, blank=True, editable=False
    )
    previous_valid_until = models.DateTimeField(null=True, blank=True, editable=False)
    rolled_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Who disabled it: a key disabled by its owner (page or admin) can only be re-enabled by
    # its owner, never by another key (SPEC §3, "Managing keys with a key").
    disabled_by_key = models.BooleanField(default=False, editable=False)
    # Its own rate, below the plan's (which applies to all the account's keys together).
    rate_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Requests per minute for this key alone, below the plan's; empty: the plan's.",
    )

    # A cap on the credits this key may spend per period (apikeys.budget); empty: none.
    budget_credits = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(BUDGET_CAP_MAX)],
    )
    budget_period = models.CharField(
        max_length=10, choices=BudgetPeriod, default=BudgetPeriod.MONTH
    )

    objects = ApiKeyManager()
    # Set by `authenticate`: the caller sent the old secret of a rolled key (its grace period).
    presented_previous_secret = False

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "API key"
        constraints = [
            # Revoked keys free their name for reuse.
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=~Q(status="revoked"),
                name="apikey_name_unique_per_user",
            )
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """How the audit log names it: by name and hint, never the secret."""
        return f"{self.name} ({self.hint})"

    @property
    def budget_status(self) -> dict[str, Any] | None:
        """{cap, period, spent, resets_at} this period, or None without a budget."""
        from apikeys import budget

        now = budget.status(self)
        if now is None:
            return None
        return {
            "cap": now.cap,
            "period": self.budget_period,
            "spent": now.spent,
            "resets_at": now.resets_at,
        }

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def display_status(self) -> str:
        if self.status == self.Status.ACTIVE and self.is_expired:
            return "expired"
        return self.status

    @property
    def in_grace(self) -> bool:
        return bool(self.previous_valid_until and self.previous_valid_until > timezone.now())

    @property
    def preset_label(self) -> str | None:
        """ "Full access" etc. when the scopes are exactly a preset's."""
        for label, scopes in PRESETS.values():
            if sorted(scopes) == sorted(self.scopes):
                return label
        return None

    def has_scope(self, *any_of: str) -> bool:
        return any(scope in self.scopes for scope in any_of)

    def scopes_beyond(self, actor: ApiKey) -> list[str]:
        """The scopes this key holds that `actor` lacks: a key may manage only keys whose
        scopes are a subset of its own, else it could roll or re-enable its way to more."""
        return sorted(set(self.scopes) - set(actor.scopes))

    def touch(self, ip: str | None) -> None:
        """Record use at most once a minute: no write at all on most requests."""
        now = timezone.now()
        threshold = now - timedelta(seconds=LAST_USED_WRITE_EVERY_S)
        if self.last_used_at is not None and self.last_used_at > threshold:
            return
        # Conditional, so concurrent requests on other workers write once between them.
        ApiKey.objects.filter(pk=self.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=threshold)
        ).update(last_used_at=now, last_used_ip=ip)
        self.last_used_at, self.last_used_ip = now, ip

    def roll(self, grace: str) -> str:
        """Issue a new secret; the current one keeps working for the grace period."""
        if grace not in ROLL_GRACE_PERIODS:
            raise ValueError(f"grace must be one of {list(ROLL_GRACE_PERIODS)}")
        secret = generate_secret(self.hint[:3])
        now = timezone.now()
        period = ROLL_GRACE_PERIODS[grace]
        self.previous_digest = self.digest if period else None
        self.previous_valid_until = now + period if period else None
        self.digest = digest(secret)
        self.hint = hint_for(secret)
        self.rolled_at = now
        with transaction.atomic():
            self.save(
                update_fields=[
                    "previous_digest",
                    "previous_valid_until",
                    "digest",
                    "hint",
                    "rolled_at",
                ]
            )
            record(self.user_id, "key.rolled", self.label, old_secret_works_for=grace)
        return secret

    def end_grace(self) -> bool:
        """Stop the old secret now, before its grace period ends. False if none was valid."""
        with transaction.atomic():
            ended = (
                ApiKey.objects.filter(pk=self.pk, previous_valid_until__gt=timezone.now())
                .exclude(previous_digest=None)
                .update(previous_digest=None, previous_valid_until=None)
            )
            if ended:
                record(self.user_id, "key.grace_ended", self.label)
        self.refresh_from_db()
        return bool(ended)

    def rename(self, name: str) -> None:
        """Raises KeyNameTaken if another live key of the owner has this name."""
        before, self.name = self.name, name
        try:
            with transaction.atomic():
                self.save(update_fields=["name"])
                record(self.user_id, "key.renamed", self.label, previous=before)
        except IntegrityError:
            self.name = before
            raise KeyNameTaken(name) from None

    def set_scopes(self, scopes: list[str]) -> None:
        before, self.scopes = self.scopes, sorted(set(scopes))
        if self.scopes != before:
            with transaction.atomic():
                self.save(update_fields=["scopes"])
                record(
                    self.user_id,
                    "key.scopes_changed",
                    self.label,
                    previous=" ".join(before),
                    now=" ".join(self.scopes),
                )

    def set_expiry(self, expires_at: datetime | None) -> None:
        if expires_at != self.expires_at:
            self.expires_at = expires_at
            with transaction.atomic():
                self.save(update_fields=["expires_at"])
                when = expires_at.isoformat(timespec="minutes") if expires_at else "never"
                record(self.user_id, "key.expiry_changed", self.label, expires=when)

    def set_budget(self, cap: int | None, period: str) -> None:
        self.budget_credits, self.budget_period = cap, period
        with transaction.atomic():
            self.save(update_fields=["budget_credits", "budget_period"])
            budget = f"{cap} a {period}" if cap else "none"
            record(self.user_id, "key.budget_changed", self.label, budget=budget)

    def set_rate(self, rate_per_minute: int | None) -> None:
        self.rate_per_minute = rate_per_minute
        with transaction.atomic():
            self.save(update_fields=["rate_per_minute"])
            rate = f"{rate_per_minute}/min" if rate_per_minute else "the plan's"
            record(self.user_id, "key.rate_changed", self.label, rate=rate)

    def revoke(self) -> None:
        with transaction.atomic():
            revoked = (
                ApiKey.objects.filter(pk=self.pk)
                .exclude(status=self.Status.REVOKED)
                .update(
                    status=self.Status.REVOKED,
                    revoked_at=timezone.now(),
                    previous_digest=None,
                    previous_valid_until=None,
                )
            )
            self.refresh_from_db()
            if revoked:
                record(self.user_id, "key.revoked", self.label)
                key_revoked.send(sender=ApiKey, key=self)

    def set_enabled(self, enabled: bool, *, by_key: bool = False) -> bool:
        """Disable (reversible) or re-enable; a revoked key stays revoked. `by_key`: done with
        an API key, which may not re-enable a key its owner disabled. False if refused."""
        keys = ApiKey.objects.filter(pk=self.pk)
        with transaction.atomic():
            if enabled:
                if by_key:
                    keys = keys.filter(disabled_by_key=True)
                changed = keys.filter(status=self.Status.DISABLED).update(
                    status=self.Status.ACTIVE, disabled_by_key=False
                )
            else:
                changed = keys.filter(status=self.Status.ACTIVE).update(
                    status=self.Status.DISABLED, disabled_by_key=by_key
                )
            if changed:
                record(self.user_id, "key.enabled" if enabled else "key.disabled", self.label)
        self.refresh_from_db()
        refused = enabled and self.status == self.Status.DISABLED  # the owner disabled it
        return not refused


# --- The authentication query --------------------------------------------------------------
# Every API request runs it, so it is one precompiled statement over exactly the columns a
# request uses (key, owner, subscription, plan, credit balance): compiling the equivalent ORM query costs
# several times the database round trip. Other columns are deferred and load if touched.
_AUTH_FIELDS = {
    "ApiKey": [
        "id",
        "user_id",
        "name",
        "hint",
        "scopes",
        "status",
        "expires_at",
        "digest",
        "previous_valid_until",
        "last_used_at",
        "last_used_ip",
        "rate_per_minute",
        "budget_credits",
        "budget_period",
    ],
    "User": ["id", "email", "name", "date_joined", "is_active"],
    "Subscription": ["id", "user_id", "plan_id", "billing_anchor_day"],
    "Plan": [
        "id",
        "slug",
        "name",
        "monthly_credits",
        "rate_per_minute",
        "burst",
        "max_api_keys",
        "max_concurrent_jobs",
        "features",
    ],
    "CreditBalance": ["id", "user_id", "allowance", "topup", "period_end"],
}
# (model, its columns in order, (index, column, converter) for the values that need one)
_Reader = tuple[type[models.Model], list[str], list[tuple[int, Any, Callable[..., Any]]]]
_auth_plan: tuple[str, list[_Reader]] | None = None


def _auth_statement() -> tuple[str, list[_Reader]]:
    global _auth_plan
    if _auth_plan is None:
        from django.db import connection

        from accounts.models import User
        from billing.models import CreditBalance, Plan, Subscription

        models_by_name = {
            "ApiKey": ApiKey,
            "User": User,
            "Subscription": Subscription,
            "Plan": Plan,
            "CreditBalance": CreditBalance,
        }
        aliases = {
            "ApiKey": "k",
            "User": "u",
            "Subscription": "s",
            "Plan": "p",
            "CreditBalance": "b",
        }
        columns: list[str] = []
        readers: list[_Reader] = []
        for name, attnames in _AUTH_FIELDS.items():
            model = models_by_name[name]
            # Model.from_db wants a subset of columns in the model's own field order.
            fields = [field for field in model._meta.concrete_fields if field.attname in attnames]
            attnames = [field.attname for field in fields]
            columns += [f'{aliases[name]}."{field.column}"' for field in fields]
            # Field and backend converters (JSON, and SQLite's datetimes-as-strings), found
            # once here rather than on every request.
            converters: list[tuple[int, Any, Callable[..., Any]]] = []
            for index, field in enumerate(fields):
                column = field.get_col(model._meta.db_table)
                for converter in connection.ops.get_db_converters(
                    column
                ) + column.get_db_converters(connection):
                    converters.append((index, column, converter))
            readers.append((model, attnames, converters))
        # Identifiers come from model metadata; the digest is always a parameter.
        sql = (
            f"SELECT {', '.join(columns)} FROM {ApiKey._meta.db_table} k "  # noqa: S608
            f"JOIN {User._meta.db_table} u ON u.id = k.user_id "
            f"LEFT JOIN {Subscription._meta.db_table} s ON s.user_id = k.user_id "
            f"LEFT JOIN {Plan._meta.db_table} p ON p.id = s.plan_id "
            f"LEFT JOIN {CreditBalance._meta.db_table} b ON b.user_id = k.user_id "
            "WHERE k.digest = %s OR k.previous_digest = %s LIMIT 1"
        )
        _auth_plan = (sql, readers)
    return _auth_plan


def _auth_lookup(presented: str) -> ApiKey | None:
    from django.db import connection

    sql, readers = _auth_statement()
    # On PostgreSQL cursors bind server-side (settings), so after a few uses this runs as a
    # prepared statement: planning this join costs ~5x running it.
    with connection.cursor() as cursor:
        cursor.execute(sql, [presented, presented])
        row = cursor.fetchone()
    if row is None:
        return None
    # Any: five different models, read in _AUTH_FIELDS order.
    instances: list[Any] = []
    offset = 0
    for model, attnames, converters in readers:
        values = list(row[offset : offset + len(attnames)])
        offset += len(attnames)
        for index, column, converter in converters:
            values[index] = converter(values[index], column, connection)
        instances.append(None if values[0] is None else model.from_db("default", attnames, values))
    key, user, subscription, plan, balance = instances
    assert isinstance(key, ApiKey)
    key._state.fields_cache["user"] = user
    if subscription is not None:
        subscription._state.fields_cache["plan"] = plan
    user._state.fields_cache["subscription"] = subscription
    user._state.fields_cache["credit_balance"] = balance
    return key
