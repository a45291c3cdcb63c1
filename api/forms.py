"""The API token page's form."""

from django import forms


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What it is for, e.g. the script's name")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name or any(ord(c) < 32 for c in name):
            raise forms.ValidationError("Give a name without control characters.")
        return name
