"""The auth function: JWT tokens (/auth/token/, /auth/token/refresh/, /auth/logout/) and /auth/me/."""
