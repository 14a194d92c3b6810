"""The tasks function: /tasks/ and /tasks/{id}/.

Container: `uvicorn functions.tasks.handler:application`
AWS Lambda: `functions.tasks.handler.handler`
"""

from mangum import Mangum

from common.infra.asgi import function_application

application = function_application("functions.tasks.urls", cached_lists=("tasks",))
handler = Mangum(application, lifespan="off")
