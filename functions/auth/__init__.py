"""The auth function: JWT tokens (/auth/token/, /auth/token/refresh/) and /auth/me/."""
