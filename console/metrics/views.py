"""/metrics for Prometheus, outside the sign-in: its own token and network checks (README "Metrics").

Off (404) unless METRICS_TOKEN or METRICS_ALLOW is set. METRICS_ALLOW: the scraper's address
(REMOTE_ADDR: behind a proxy, the proxy's) must be in one of the networks, else 403. METRICS_TOKEN:
`Authorization: Bearer <token>`, compared in constant time, else 401. With both set, both are needed.
"""

import hmac
import ipaddress

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from audit.log import record_refusal
from console.metrics.collector import registry


@login_not_required
@never_cache
@require_GET
def metrics(request):
    if not settings.METRICS_TOKEN and not settings.METRICS_ALLOW:
        raise Http404
    if settings.METRICS_ALLOW and not _address_allowed(request.META.get("REMOTE_ADDR", "")):
        record_refusal("metrics_refused", request, details={"reason": "network"})
        return HttpResponse(gettext("Metrics are not served to this address."), status=403, content_type="text/plain")
    if settings.METRICS_TOKEN and not _token_matches(request.headers.get("Authorization", "")):
        record_refusal("metrics_refused", request, details={"reason": "token"})
        response = HttpResponse(gettext("A valid metrics token is needed."), status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # The classic text format, which every Prometheus reads: the names are all plain ASCII, so
    # generate_latest's output is the same in 0.0.4 as in 1.0.0.
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def _address_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in settings.METRICS_ALLOW)


def _token_matches(header: str) -> bool:
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())
