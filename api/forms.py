"""The API token page's form."""

from django import forms
from django.utils.translation import gettext_lazy

from api.tokens import NAME_MAX, name_problem
from utilities.texts import localized


class TokenForm(forms.Form):
    # No max_length: a browser cuts what is typed or pasted at maxlength without a word; a name
    # over the limit is refused with the limit instead (clean_name).
    name = forms.CharField(
        help_text=gettext_lazy("What it is for, e.g. the script's name (at most %(max)s characters)")
        % {"max": NAME_MAX}
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if problem := name_problem(name):
            raise forms.ValidationError(localized(problem))
        return name
