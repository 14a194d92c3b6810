from django.urls import include, path

from common.api.urls import handler400, handler404, handler500  # noqa: F401 (read from the root urlconf)
from functions.projects import members, views

urlpatterns = [
    path("projects/", views.ProjectList.as_view(), name="project-list"),
    path("projects/<int:pk>/", views.ProjectDetail.as_view(), name="project-detail"),
    path(
        "projects/<int:pk>/summaries/", views.ProjectSummaryList.as_view(), name="project-summaries"
    ),
    path("projects/<int:pk>/members/", members.MemberList.as_view(), name="project-members"),
    path(
        "projects/<int:pk>/members/<str:username>/",
        members.MemberDetail.as_view(),
        name="project-member",
    ),
    path("", include("common.api.urls")),
]
