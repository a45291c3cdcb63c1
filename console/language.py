"""The language a signed-in user chose, remembered for the account as well as in the browser.

The switch posts to set_language (Django's view: the choice goes into the language cookie, which
LocaleMiddleware reads); for a signed-in user it is also kept in console.Preference. Signing in
puts the account's choice into the session, and PreferredLanguageMiddleware applies it (and
renews the cookie) in a browser that has another or none: the language follows the operator
from one workstation to the next.
"""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import translation
from django.views.i18n import set_language as django_set_language

SESSION_KEY = "console_language"


def _supported(code: str) -> str:
    try:
        return translation.get_supported_language_variant(code) if code else ""
    except LookupError:
        return ""


def set_language(request):
    """Django's set_language, and the account's preference when the language is one we offer."""
    from console.models import Preference

    response = django_set_language(request)
    language = _supported(request.POST.get("language", "")) if request.method == "POST" else ""
    if language and request.user.is_authenticated:
        Preference.objects.update_or_create(user=request.user, defaults={"language": language})
        request.session[SESSION_KEY] = language
    return response


@receiver(user_logged_in)
def remember_on_login(sender, request, user, **kwargs):
    from console.models import Preference

    if request is None:
        return
    language = Preference.objects.filter(user=user).values_list("language", flat=True).first()
    if language := _supported(language or ""):
        request.session[SESSION_KEY] = language


class PreferredLanguageMiddleware:
    """After AuthenticationMiddleware: a signed-in user's saved language wins over the browser's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        language = session.get(SESSION_KEY) if session is not None else None
        if not language or language == getattr(request, "LANGUAGE_CODE", None):
            return self.get_response(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        if request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language and session.get(SESSION_KEY) == language:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                samesite=settings.LANGUAGE_COOKIE_SAMESITE,
            )
        return response
