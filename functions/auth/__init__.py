"""The auth function: JWT tokens (/auth/token/, /refresh/, /auth/logout/) and /auth/me/."""
