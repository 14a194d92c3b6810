from django.urls import include, path

from functions.auth import views

urlpatterns = [
    path("auth/token/", views.TokenObtain.as_view(), name="token-obtain"),
    path("auth/token/refresh/", views.TokenRefresh.as_view(), name="token-refresh"),
    path("auth/me/", views.Me.as_view(), name="me"),
    path("", include("common.urls")),
]

handler400 = "common.errors.bad_request"
handler404 = "common.errors.not_found"
handler500 = "common.errors.server_error"
