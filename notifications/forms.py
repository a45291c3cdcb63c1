"""A webhook (administrators) and a user's own subscription."""

from django import forms
from django.core.validators import URLValidator
from django.utils.translation import gettext_lazy as _

from notifications.models import EventKind, Webhook

MIN_SECRET = 16


def _kinds(label):
    return forms.MultipleChoiceField(
        label=label, choices=EventKind.choices, widget=forms.CheckboxSelectMultiple, required=False
    )


class WebhookForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    url = forms.URLField(
        label="URL",
        assume_scheme="https",
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text=_("http:// or https://; the console POSTs signed JSON to it"),
    )
    kinds = _kinds(_("Events"))
    # render_value=False: a secret typed once is never sent back to the browser, not even on errors.
    secret = forms.CharField(
        label=_("Secret"),
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=False,
        min_length=MIN_SECRET,
        help_text=_("The HMAC-SHA256 key the receiver checks signatures with; stored encrypted, never shown again"),
    )
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)

    def __init__(self, *args, editing: Webhook | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing is not None:
            self.fields["secret"].help_text = _("Leave empty to keep the stored secret")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        others = Webhook.objects.exclude(pk=self.editing.pk if self.editing else None)
        if others.filter(name=name).exists():
            raise forms.ValidationError(_("Another webhook has this name."))
        return name

    def clean(self):
        data = super().clean()
        if self.editing is None and not data.get("secret") and "secret" not in self.errors:
            self.add_error("secret", _("A new webhook needs a secret (at least %(n)d characters).") % {"n": MIN_SECRET})
        return data


class SubscriptionForm(forms.Form):
    kinds = _kinds(_("Tell me when"))
    email = forms.BooleanField(label=_("By e-mail"), required=False)
