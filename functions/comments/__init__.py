"""The comments function: /tasks/{id}/comments/."""
