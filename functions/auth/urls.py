from django.urls import include, path

from common.api.urls import handler400, handler404, handler500  # noqa: F401 (read from the root urlconf)
from functions.auth import views

urlpatterns = [
    path("auth/token/", views.TokenObtain.as_view(), name="token-obtain"),
    path("auth/token/refresh/", views.TokenRefresh.as_view(), name="token-refresh"),
    path("auth/logout/", views.Logout.as_view(), name="logout"),
    path("auth/me/", views.Me.as_view(), name="me"),
    path("", include("common.api.urls")),
]
