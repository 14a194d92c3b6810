"""The page every list returns: `{"count", "next", "previous", "results"}`."""

from collections.abc import Callable
from typing import Any, cast

from django.core.paginator import InvalidPage, Page, Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer


class CountedPaginator(Paginator):
    """Django's paginator, counting the rows with a function of the queryset given."""

    def __init__(self, object_list, per_page, count: Callable[[Any], int]) -> None:
        super().__init__(object_list, per_page)
        self.count_rows = count

    @cached_property
    def count(self) -> int:
        return self.count_rows(self.object_list)


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200  # a larger page_size is clamped, not refused

    def page_rows(
        self,
        queryset: QuerySet,
        request,
        count: Callable[[QuerySet], int] | None = None,
        after: int | None = None,
    ) -> QuerySet:
        """Like paginate_queryset, but the page's rows stay a queryset, not yet fetched; `count`
        counts the rows (default: the queryset's count()). `after`: the last id of the page
        before this one, when known (common.infra.cache.page_start); in a list in id order the
        page is then the rows after it, without reading the ids of every row before the page."""
        self.request = request
        size = self.get_page_size(request) or 1
        paginator = CountedPaginator(queryset, size, count or (lambda rows: rows.count()))
        number = self.get_page_number(request, paginator)
        try:
            self.page = page = paginator.page(number)
        except InvalidPage as exc:
            message = self.invalid_page_message.format(page_number=number, message=str(exc))
            raise NotFound(message) from exc
        if after is not None and page.number > 1 and list(queryset.query.order_by) == ["id"]:
            return queryset.filter(id__gt=after)[:size]
        return cast(QuerySet, page.object_list)  # a slice of the queryset, still lazy

    def render_page(self, results_json: bytes) -> bytes:
        """The page as JSON around `results_json`, rows already rendered elsewhere."""
        links = {
            "count": cast(Page, self.page).paginator.count,
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
        }
        return JSONRenderer().render(links)[:-1] + b',"results":' + results_json + b"}"
