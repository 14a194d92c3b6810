"""Tasks and comments in the admin: tasks written through task_*, comments shown read-only.

Staff act as the system (`actor=None`), as for projects (functions.admin.projects): the
membership rules still hold, so a task goes only to a member of its project with role member
or above, and a refusal shows on the form.
"""

from django import forms
from django.contrib import admin

from common.domain import services
from common.domain.models import Comment, Task
from functions.admin.service_admin import ServiceAdmin, adopt
from functions.admin.site import site


@admin.register(Task, site=site)
class TaskAdmin(ServiceAdmin):
    deleted_with = (Comment,)
    fields = ("project", "title", "description", "status", "assignee", "due_date")
    readonly_fields = ("comment_count", "reminder_sent_at", "completed_at")
    list_display = ("id", "title", "project", "status", "assignee", "due_date")
    list_filter = ("status",)
    list_select_related = ("project", "assignee")
    search_fields = ("title",)
    autocomplete_fields = ("project", "assignee")

    def get_fields(self, request, obj=None):
        return (*self.fields, *self.readonly_fields) if obj else self.fields

    def save_model(self, request, obj: Task, form: forms.ModelForm, change: bool) -> None:
        if change:
            changes = {field: form.cleaned_data[field] for field in form.changed_data}
            if changes:
                services.task_update(actor=None, task=obj, **changes)
            return
        task = services.task_create(
            actor=None, **{field: form.cleaned_data[field] for field in self.fields}
        )
        adopt(obj, task)

    def delete_model(self, request, obj: Task) -> None:
        services.task_delete(actor=None, task=obj)

    def delete_queryset(self, request, queryset) -> None:
        for task in queryset.order_by("pk"):
            services.task_delete(actor=None, task=task)


@admin.register(Comment, site=site)
class CommentAdmin(admin.ModelAdmin):
    """Read-only: comments are written by their authors, over the API."""

    list_display = ("id", "task", "author", "created_at")
    list_select_related = ("task",)
    search_fields = ("content", "author")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
