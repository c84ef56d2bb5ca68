from __future__ import annotations

from typing import Any

from django import forms

from apikeys.models import ROLL_GRACE_PERIODS
from webhooks import service
from webhooks.models import EVENTS, NotificationSettings


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="Endpoint URL",
        max_length=1000,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks/nano"}),
        help_text="https, on a public address. We POST each event there as JSON, signed.",
    )
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=list(EVENTS.items()),
        widget=forms.CheckboxSelectMultiple,
        initial=list(EVENTS),
    )

    def clean_url(self) -> str:
        try:
            return service.check_endpoint_url(self.cleaned_data["url"])
        except service.BadUrl as exc:
            raise forms.ValidationError(str(exc)) from None


class RollForm(forms.Form):
    grace = forms.ChoiceField(
        label="Old secret keeps signing for",
        choices=[
            ("now", "No time: stop now"),
            ("1h", "1 hour"),
            ("24h", "24 hours"),
            ("7d", "7 days"),
        ],
        initial="24h",
    )

    def clean_grace(self) -> Any:
        return ROLL_GRACE_PERIODS[self.cleaned_data["grace"]]


class NotificationsForm(forms.ModelForm[NotificationSettings]):
    class Meta:
        model = NotificationSettings
        fields = ["credits_low", "key_expiring", "endpoint_disabled"]
