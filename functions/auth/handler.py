"""The auth function: /auth/token/, /auth/token/refresh/, /auth/me/.

Container: `uvicorn functions.auth.handler:application`
AWS Lambda: `functions.auth.handler.handler`
"""

from mangum import Mangum

from common.infra.asgi import function_application

application = function_application("functions.auth.urls")
handler = Mangum(application, lifespan="off")
