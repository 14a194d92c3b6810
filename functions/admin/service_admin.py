"""The ModelAdmin of a model written through services, and a service's refusal shown: never a 500.

The services raise DRF's ValidationError (400), PermissionDenied (403) and NotFound (404), and a
row's DoesNotExist when a concurrent write deleted it. The admin calls them where Django's admin
saves (`save_model`, `save_formset`, `delete_model`, `delete_queryset`), inside the transaction
Django's admin opens for the view, so a refusal rolls the whole submit back. A refused form is
then shown again with the refusal as its errors; a refused delete or bulk action as a message.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError

REFUSALS = (ValidationError, PermissionDenied, NotFound, ObjectDoesNotExist)
_REFUSAL = "_taskwire_refusal"  # the request attribute carrying a refusal to the second pass


def refusal_errors(exc: Exception) -> dict[str | None, list[str]]:
    """The refusal as form errors: a field's own, or the form's (None) for everything else."""
    if isinstance(exc, ObjectDoesNotExist):
        return {None: ["It was deleted meanwhile."]}
    detail: Any = exc.detail  # type: ignore[attr-defined]  # one of the DRF errors above
    if not isinstance(detail, dict):
        return {None: [str(message) for message in _as_list(detail)]}
    return {
        (None if field == "detail" else field): [str(m) for m in _as_list(messages_)]
        for field, messages_ in detail.items()
    }


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


class RefusableForm(forms.ModelForm):
    """A ModelForm that shows the refusal of its first submit (`refusal`) as its errors."""

    refusal: Exception | None = None

    def clean(self):
        cleaned = super().clean()
        if self.refusal is not None:
            for field, errors in refusal_errors(self.refusal).items():
                self.add_error(field if field in self.fields else None, errors)
        return cleaned


class ServiceAdmin(admin.ModelAdmin):
    """A ModelAdmin whose writes go through services: a refusal rolls back and is shown."""

    form = RefusableForm
    # Models the service deletes along with this one: their own admin (read-only) refusing to
    # delete one of them alone does not stop the cascade.
    deleted_with: tuple[type[Model], ...] = ()

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed -= {model._meta.verbose_name for model in self.deleted_with}
        return deleted, counts, perms_needed, protected

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, _REFUSAL, None)
        if refusal is None:
            return form
        return type(form.__name__, (form,), {"refusal": refusal})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except REFUSALS as exc:  # rolled back: the same submit again, refused by its form
            setattr(request, _REFUSAL, exc)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except REFUSALS as exc:
            return self._refused(request, exc, request.path.removesuffix("delete/"))

    def changelist_view(self, request, extra_context=None):
        """The list and its bulk actions (delete): an action either happens whole or not."""
        try:
            with transaction.atomic():
                return super().changelist_view(request, extra_context)
        except REFUSALS as exc:
            return self._refused(request, exc, request.get_full_path())

    def _refused(self, request: HttpRequest, exc: Exception, to: str) -> HttpResponse:
        for field, errors in refusal_errors(exc).items():
            for error in errors:
                self.message_user(request, f"{field}: {error}" if field else error, messages.ERROR)
        return HttpResponseRedirect(to)


def adopt(obj: Model, created: Model) -> None:
    """The admin's form instance becomes the row a service created, for its history and inlines."""
    obj.pk = created.pk
    obj.refresh_from_db()
