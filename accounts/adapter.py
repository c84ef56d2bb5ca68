from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.models import EmailAddress
from django.http import HttpRequest

from billing.subscriptions import start_default_plan


class AccountAdapter(DefaultAccountAdapter):
    def confirm_email(self, request: HttpRequest, email_address: EmailAddress) -> bool:
        # allauth goes on (signs the newcomer in) only when this answers True.
        confirmed: bool = super().confirm_email(request, email_address)
        if confirmed:
            # A verified address is what makes an account real: that is when it gets a plan.
            start_default_plan(email_address.user)
        return confirmed
