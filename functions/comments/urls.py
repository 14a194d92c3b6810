from django.urls import include, path

from functions.comments import views

urlpatterns = [
    path("tasks/<int:task_pk>/comments/", views.CommentList.as_view(), name="comment-list"),
    path("", include("common.urls")),
]

handler400 = "common.errors.bad_request"
handler404 = "common.errors.not_found"
handler500 = "common.errors.server_error"
