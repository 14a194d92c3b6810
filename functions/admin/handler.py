"""The admin function: Django's admin at /admin/ for staff, and its static files (/static/admin/).

Its settings are its own, functions.admin.settings (the default here; the Docker image names
common.infra.settings, so compose names these for the admin service).
Container: `uvicorn functions.admin.handler:application`
AWS Lambda: `functions.admin.handler.handler`
"""

import os

from mangum import Mangum

from common.infra.asgi import function_application
from common.infra.static import StaticFiles

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "functions.admin.settings")
application = StaticFiles(function_application("functions.admin.urls"))
handler = Mangum(application, lifespan="off")  # type: ignore[arg-type]  # an ASGI app all the same
