"""The admin function: Django's admin at /admin/, for staff, writing through the services."""
