"""The tasks function: /tasks/ and /tasks/{id}/."""
