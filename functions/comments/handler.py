"""The comments function: /tasks/{id}/comments/.

Container: `uvicorn functions.comments.handler:application`
AWS Lambda: `functions.comments.handler.handler`
"""

from mangum import Mangum

from common.infra.asgi import function_application

application = function_application("functions.comments.urls")
handler = Mangum(application, lifespan="off")
