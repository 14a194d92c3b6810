"""The page every list returns: `{"count", "next", "previous", "results"}`."""

from typing import cast

from django.core.paginator import InvalidPage, Page
from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200  # a larger page_size is clamped, not refused

    def page_rows(self, queryset: QuerySet, request) -> QuerySet:
        """Like paginate_queryset, but the page's rows stay a queryset, not yet fetched."""
        self.request = request
        paginator = self.django_paginator_class(queryset, self.get_page_size(request) or 1)
        number = self.get_page_number(request, paginator)
        try:
            self.page = page = paginator.page(number)
        except InvalidPage as exc:
            message = self.invalid_page_message.format(page_number=number, message=str(exc))
            raise NotFound(message) from exc
        return cast(QuerySet, page.object_list)  # a slice of the queryset, still lazy

    def render_page(self, results_json: bytes) -> bytes:
        """The page as JSON around `results_json`, rows already rendered elsewhere."""
        links = {
            "count": cast(Page, self.page).paginator.count,
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
        }
        return JSONRenderer().render(links)[:-1] + b',"results":' + results_json + b"}"
