"""A user's own API tokens: create (the token is shown once, in the answer to the POST) and revoke."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from api.forms import TokenForm
from api.models import ApiToken
from api.tokens import create_token, revoke_token

MOST_TOKENS = 20


def tokens(request):
    form = TokenForm(request.POST if request.method == "POST" else None)
    mine = ApiToken.objects.filter(user=request.user)
    context = {"form": form, "tokens": mine, "secret": None}
    if request.method == "POST":
        if mine.filter(revoked_at=None).count() >= MOST_TOKENS:
            form.add_error(None, f"You have {MOST_TOKENS} active tokens; revoke one first.")
        if not form.is_valid():
            return render(request, "api/tokens.html", context, status=400)
        row, context["secret"] = create_token(request.user, form.cleaned_data["name"], request)
        context.update(created=row, form=TokenForm())
        response = render(request, "api/tokens.html", context, status=201)
        response["Cache-Control"] = "no-store"  # the one page that holds the token
        return response
    return render(request, "api/tokens.html", context)


@require_POST
def revoke(request, pk: int):
    row = ApiToken.objects.filter(pk=pk, user=request.user).first()
    if row is None:
        raise Http404("No such token of yours.")
    if revoke_token(row, request.user, request):
        messages.success(request, f"Token {row.name} ({row.prefix}) revoked: it no longer works.")
    else:
        messages.info(request, f"Token {row.name} was revoked already.")
    return redirect("api_tokens")
