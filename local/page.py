"""The local page at `/`: one static HTML file, its script and its style, for local runs only.

Sign in, pick a project, see and change its tasks, watch the websocket's events arrive. No build
step and no framework: the files in local/page/ are served as they are, under a
Content-Security-Policy that allows only this origin's own script, style and connections (no
inline script, no other site), so a task title can never become markup that runs.
"""

from pathlib import Path

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

PAGE_DIR = Path(__file__).resolve().parent / "page"
FILES = {  # what may be asked for, and its type: nothing else under local/page/ is served
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@require_safe
def page(request: HttpRequest) -> HttpResponse:
    return asset(request, "index.html")


@require_safe
def asset(request: HttpRequest, name: str) -> HttpResponse:
    request.get_host()  # a Host not in ALLOWED_HOSTS (DNS rebinding) is a 400
    if name not in FILES:
        raise Http404(name)
    response = HttpResponse((PAGE_DIR / name).read_bytes(), content_type=FILES[name])
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Cache-Control"] = "no-cache"  # an edited file shows on the next load
    return response
