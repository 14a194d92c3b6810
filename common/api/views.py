"""What the API's views share beyond DRF's generics: a create answer that says where it lives."""

from typing import TYPE_CHECKING, Any

from django.urls import reverse

if TYPE_CHECKING:  # what the mixin is mixed into, for the type checker
    from rest_framework.generics import GenericAPIView as _View
else:
    _View = object


class CreatedLocationMixin(_View):
    """A 201 carries `Location`: the new resource's URL, `location_view` reversed with
    `location_kwargs(data)` (default: its id as `pk`)."""

    location_view: str

    def location_kwargs(self, data: dict[str, Any]) -> dict[str, Any]:
        return {"pk": data["id"]}

    def get_success_headers(self, data) -> dict[str, str]:
        path = reverse(self.location_view, kwargs=self.location_kwargs(data))
        return {"Location": self.request.build_absolute_uri(path)}
