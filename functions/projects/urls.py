from django.urls import include, path

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
    path("", include("common.urls")),
]

handler400 = "common.errors.bad_request"
handler404 = "common.errors.not_found"
handler500 = "common.errors.server_error"
