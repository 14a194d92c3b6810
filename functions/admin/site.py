"""The admin site: staff only, every model it changes written through the services."""

from django.contrib import admin


class TaskwireAdminSite(admin.AdminSite):
    site_header = "Taskwire admin"
    site_title = "Taskwire admin"
    index_title = "Users, projects and tasks"


site = TaskwireAdminSite(name="admin")
