"""The projects function: /projects/, /projects/{id}/, /projects/{id}/summaries/.

Container: `uvicorn functions.projects.handler:application`
AWS Lambda: `functions.projects.handler.handler`
"""

from mangum import Mangum

from common.infra.asgi import function_application

application = function_application("functions.projects.urls", cached_lists=("projects",))
handler = Mangum(application, lifespan="off")
