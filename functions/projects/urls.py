from django.urls import include, path

from common.api.urls import handler400, handler404, handler500  # noqa: F401 (read from the root urlconf)
from functions.projects import members, views, webhooks

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
    path("projects/<int:pk>/events/", webhooks.ActivityFeed.as_view(), name="project-events"),
    path("projects/<int:pk>/webhooks/", webhooks.WebhookList.as_view(), name="project-webhooks"),
    path(
        "projects/<int:pk>/webhooks/<int:wid>/",
        webhooks.WebhookDetail.as_view(),
        name="project-webhook",
    ),
    path(
        "projects/<int:pk>/webhooks/<int:wid>/deliveries/",
        webhooks.DeliveryList.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "projects/<int:pk>/webhooks/<int:wid>/deliveries/<int:did>/redeliver/",
        webhooks.Redeliver.as_view(),
        name="webhook-redeliver",
    ),
    path("", include("common.api.urls")),
]
