from django.urls import include, path

from common.api.urls import handler400, handler404, handler500  # noqa: F401 (read from the root urlconf)
from functions.comments import views

urlpatterns = [
    path("tasks/<int:task_pk>/comments/", views.CommentList.as_view(), name="comment-list"),
    path("", include("common.api.urls")),
]
