"""Users in the admin: Django's own forms create them, deactivate them and reset passwords.

A user's save invalidates what the cache knows of them after commit (common.cache.invalidation:
every list shows usernames, and a deactivated user loses the hit path in front of Django at once).
Deleting a user is not offered: it would drop their memberships without the membership services
(no `member.removed`, their tasks unassigned unannounced); deactivate them instead.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from functions.admin.site import site


@admin.register(get_user_model(), site=site)
class TaskwireUserAdmin(UserAdmin):
    def has_delete_permission(self, request, obj=None) -> bool:
        return False


site.register(Group, GroupAdmin)  # staff permissions are given through groups
