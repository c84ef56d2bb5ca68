from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from apikeys.models import BUDGET_CAP_MAX, PRESETS, ROLL_GRACE_PERIODS, BudgetPeriod, Scope

EXPIRY_CHOICES = [
    ("never", "Never"),
    ("30", "30 days"),
    ("60", "60 days"),
    ("90", "90 days"),
    ("custom", "On a date"),
]
PRESET_CHOICES = [(slug, label) for slug, (label, _) in PRESETS.items()] + [("custom", "Custom")]
GRACE_CHOICES = [
    ("now", "Immediately"),
    ("1h", "In 1 hour"),
    ("24h", "In 24 hours"),
    ("7d", "In 7 days"),
]
assert [value for value, _ in GRACE_CHOICES] == list(ROLL_GRACE_PERIODS)


class BudgetFields(forms.Form):
    """A key's credit cap, on the create and the edit dialog."""

    budget_cap = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=BUDGET_CAP_MAX,
        label="Credit budget",
        help_text="The most credits this key may spend per period. Empty: no cap.",
    )
    budget_period = forms.ChoiceField(
        choices=BudgetPeriod.choices, initial=BudgetPeriod.MONTH, required=False
    )

    def clean_budget_period(self) -> str:
        return str(self.cleaned_data.get("budget_period") or BudgetPeriod.MONTH)


class ApiKeyCreateForm(BudgetFields):
    name = forms.CharField(
        max_length=100,
        help_text="What uses this key, e.g. “production server” or “CI”.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )
    preset = forms.ChoiceField(
        choices=PRESET_CHOICES, initial="full", widget=forms.RadioSelect, label="Permissions"
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Custom scopes",
    )
    expiry = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="never", widget=forms.RadioSelect)
    expiry_date = forms.DateField(
        required=False, label="Expiry date", widget=forms.DateInput(attrs={"type": "date"})
    )
    # The metaclass moves form fields into base_fields, so Form.prefix (a str) is not replaced;
    # the stubs see a class attribute of another type.
    prefix = forms.ChoiceField(  # type: ignore[assignment]
        choices=[
            ("nh_", "nh_ (default)"),
            ("sk-", "sk- (for tools that expect OpenAI-style keys)"),
        ],
        initial="nh_",
        widget=forms.RadioSelect,
        label="Key style",
    )

    def clean_name(self) -> str:
        return str(self.cleaned_data["name"]).strip()

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        preset = data.get("preset")
        if preset == "custom":
            if not data.get("scopes"):
                self.add_error("scopes", "Pick at least one scope.")
            data["scope_list"] = list(data.get("scopes") or [])
        elif preset:
            data["scope_list"] = list(PRESETS[preset][1])
        expiry = data.get("expiry")
        data["expires_at"] = None
        if expiry == "custom":
            day = data.get("expiry_date")
            if not day:
                self.add_error("expiry_date", "Pick the date the key should stop working.")
            elif day <= timezone.now().date():
                self.add_error("expiry_date", "The date must be in the future.")
            else:
                data["expires_at"] = timezone.make_aware(datetime.combine(day, time.min))
        elif expiry and expiry != "never":
            data["expires_at"] = timezone.now() + timedelta(days=int(expiry))
        return data


class ApiKeyRollForm(forms.Form):
    grace = forms.ChoiceField(
        choices=GRACE_CHOICES,
        initial="24h",
        widget=forms.RadioSelect,
        label="The current secret stops working",
    )


class ApiKeyRenameForm(forms.Form):
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"autocomplete": "off"}))

    def clean_name(self) -> str:
        return str(self.cleaned_data["name"]).strip()


class ApiKeyEditForm(BudgetFields):
    """What can change on a key without rolling it (its name has its own dialog)."""

    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, label="Scopes"
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        help_text="Empty: never. The key stops working at 00:00 UTC that day.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    rate_per_minute = forms.IntegerField(
        required=False,
        min_value=1,
        label="Own rate (requests per minute)",
        help_text="Below your plan's, which all your keys share. Empty: the plan's.",
    )

    def __init__(self, *args: Any, plan_rate: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plan_rate = plan_rate

    def clean_expires_on(self) -> date | None:
        day: date | None = self.cleaned_data.get("expires_on")
        if day is not None and day <= timezone.now().date():
            raise forms.ValidationError("The date must be in the future.")
        return day

    def clean_rate_per_minute(self) -> int | None:
        rate: int | None = self.cleaned_data.get("rate_per_minute")
        if rate is not None and rate > self.plan_rate:
            raise forms.ValidationError(f"At most your plan's {self.plan_rate} per minute.")
        return None if rate == self.plan_rate else rate
