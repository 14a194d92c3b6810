"""The HTTP functions: one self-contained ASGI handler per resource, sharing common/."""
