"""Projects and their members in the admin, written through project_* and membership_*.

Staff act as the system (`actor=None`): membership is the only way into a project, for staff
too (CONTRACT section 1b), so the services' role checks, which are for API callers, do not
apply; every other rule does (one owner, who cannot leave; assignees are members). The events
therefore name no actor; the admin's own history names the staff user.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import transaction

from common.domain import memberships, services
from common.domain.access import Role
from common.domain.models import Comment, Membership, Project
from functions.admin.service_admin import RefusableForm, ServiceAdmin, adopt
from functions.admin.site import site


class MembershipInline(admin.TabularInline):
    model = Membership
    fields = ("user", "role", "added_at")
    readonly_fields = ("added_at",)
    autocomplete_fields = ("user",)
    extra = 0


class ProjectForm(RefusableForm):
    """On add, `owner` names the owner member; afterwards ownership moves in the members."""

    class Meta:
        model = Project
        fields = ("name", "description", "owner")


@admin.register(Project, site=site)
class ProjectAdmin(ServiceAdmin):
    form = ProjectForm
    inlines = (MembershipInline,)
    deleted_with = (Comment,)
    list_display = ("id", "name", "owner", "created_at", "updated_at")
    list_select_related = ("owner",)
    search_fields = ("name",)
    autocomplete_fields = ("owner",)

    def get_readonly_fields(self, request, obj=None):
        return ("owner", "created_at", "updated_at") if obj else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None:  # a project has its owner from the start, as one made over the API
            form.base_fields["owner"].required = True
        return form

    def save_model(self, request, obj: Project, form: forms.ModelForm, change: bool) -> None:
        if change:
            changes = {field: form.cleaned_data[field] for field in form.changed_data}
            if changes:
                services.project_update(actor=None, project=obj, **changes)
            return
        project = services.project_create(actor=None, name=obj.name, description=obj.description)
        _member_add(project, form.cleaned_data["owner"], Role.OWNER)
        adopt(obj, project)

    def save_formset(self, request, form, formset, change: bool) -> None:
        """The members' rows: ownership transfers first, then other changes, additions and
        removals, so a new owner is in place before the old one is changed or removed."""
        formset.save(commit=False)
        project = form.instance
        changed = sorted(formset.changed_objects, key=lambda item: item[0].role != Role.OWNER)
        for membership, fields in changed:
            _member_change(project, membership, fields)
        for membership in formset.new_objects:
            _member_add(project, membership.user, membership.role)
        for membership in formset.deleted_objects:
            memberships.membership_remove(actor=None, project=project, user=membership.user)

    def delete_model(self, request, obj: Project) -> None:
        services.project_delete(actor=None, project=obj)

    def delete_queryset(self, request, queryset) -> None:
        for project in queryset.order_by("pk"):
            services.project_delete(actor=None, project=project)


def _member_add(project: Project, user: User, role: str) -> None:
    """Add the member; an owner arrives as a member and takes ownership by a transfer, the
    one path that keeps a single owner and `Project.owner` naming them."""
    with transaction.atomic():
        first = Role.MEMBER if role == Role.OWNER else role
        memberships.membership_add(actor=None, project=project, user=user, role=first)
        if role == Role.OWNER:
            memberships.membership_change(actor=None, project=project, user=user, role=role)


def _member_change(project: Project, membership: Membership, fields: list[str]) -> None:
    """A row given another user is that user's membership in place of the first one's."""
    if "user" in fields:
        was = Membership.objects.select_related("user").get(pk=membership.pk).user
        memberships.membership_remove(actor=None, project=project, user=was)
        _member_add(project, membership.user, membership.role)
    elif "role" in fields:
        memberships.membership_change(
            actor=None, project=project, user=membership.user, role=membership.role
        )
