"""The page every list returns: `{"count", "next", "previous", "results"}`."""

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200  # a larger page_size is clamped, not refused
