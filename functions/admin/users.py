"""Users in the admin: Django's own forms create them, deactivate them and reset passwords.

A change to a user goes through domain.services.user_update, whose effects after commit make the
cache forget what it knew (every list shows usernames, and a deactivated user loses the hit path
in front of Django at once).
Deleting a user is not offered: it would drop their memberships without the membership services
(no `member.removed`, their tasks unassigned unannounced); deactivate them instead.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from common.domain import services
from functions.admin.site import site


@admin.register(get_user_model(), site=site)
class TaskwireUserAdmin(UserAdmin):
    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        if not change:  # a new user: nothing cached knows them yet
            super().save_model(request, obj, form, change)
            return
        columns = {field.name for field in obj._meta.concrete_fields}
        changes = {name: getattr(obj, name) for name in form.changed_data if name in columns}
        if changes:
            services.user_update(user=obj, **changes)


site.register(Group, GroupAdmin)  # staff permissions are given through groups
