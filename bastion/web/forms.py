"""Forms of the web UI. They parse and shape input; the named actions validate the domain rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from bastion.core.models import Role

ROLE_CHOICES = [(value, label) for value, label in Role.choices]
EXPIRY_CHOICES = [
    ("", "Never"),
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
]


def expiry_from_days(raw: str) -> datetime | None:
    return timezone.now() + timedelta(days=int(raw)) if raw else None


class LoginForm(forms.Form):
    username = forms.CharField(
        label="Username or email",
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class TotpForm(forms.Form):
    code = forms.RegexField(
        label="Authentication code",
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": "Enter the 6-digit code from your authenticator app."},
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "placeholder": "123456",
            }
        ),
    )


class SignupForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autofocus": True}))
    email = forms.EmailField()
    password = forms.CharField(
        strip=False,
        help_text="At least 10 characters, not a common password.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autofocus": True}))
    slug = forms.CharField(
        max_length=50,
        help_text="Lowercase letters, digits and hyphens; it appears in URLs.",
    )


class OrganizationNameForm(forms.Form):
    name = forms.CharField(max_length=200)


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.CharField(max_length=50, help_text="Lowercase letters, digits and hyphens.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “deploy pipeline”.")
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=Role.MEMBER)
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False, initial="90")


class ClusterForm(forms.Form):
    name = forms.CharField(max_length=50, help_text="Lowercase letters, digits and hyphens.")
    description = forms.CharField(required=False, max_length=500)


class QueueForm(forms.Form):
    key = forms.CharField(max_length=50, help_text="Agents pick it with --tags queue=KEY.")
    description = forms.CharField(required=False, max_length=500)


class AgentTokenForm(forms.Form):
    description = forms.CharField(required=False, max_length=200)
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False)


class PasswordChangeForm(forms.Form):
    current_password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    new_password = forms.CharField(
        strip=False,
        help_text="At least 10 characters, not a common password.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    confirm_password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if data and data.get("new_password") != data.get("confirm_password"):
            self.add_error("confirm_password", "The two passwords differ.")
        return data


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=200)
    action = forms.CharField(required=False, max_length=100)
    object = forms.CharField(required=False, max_length=300)
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if data and data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end date is before the start date.")
        return data
