"""The committed OpenAPI schema is the one the code generates."""

from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiYamlRenderer

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def test_docs_openapi_yaml_matches_the_code():
    generated = OpenApiYamlRenderer().render(
        SchemaGenerator(urlconf="local.urls").get_schema(public=True)
    )

    assert generated.decode() == SCHEMA.read_text(), (
        "the API changed: run `make schema` and commit it"
    )


def test_every_contract_path_is_in_the_schema():
    paths = set(SchemaGenerator(urlconf="local.urls").get_schema(public=True)["paths"])

    assert paths == {
        "/projects/",
        "/projects/{id}/",
        "/projects/{id}/summaries/",
        "/projects/{id}/members/",
        "/projects/{id}/members/{username}/",
        "/projects/{id}/events/",
        "/projects/{id}/webhooks/",
        "/projects/{id}/webhooks/{wid}/",
        "/projects/{id}/webhooks/{wid}/deliveries/",
        "/projects/{id}/webhooks/{wid}/deliveries/{did}/redeliver/",
        "/tasks/",
        "/tasks/{id}/",
        "/tasks/{task_pk}/comments/",
        "/auth/token/",
        "/auth/token/refresh/",
        "/auth/logout/",
        "/auth/me/",
    }


@pytest.mark.django_db
def test_the_models_and_the_migrations_agree():
    from io import StringIO

    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())  # exits 1 on drift


def test_429_with_retry_after_is_documented_where_a_limit_can_answer_it():
    paths = SchemaGenerator(urlconf="local.urls").get_schema(public=True)["paths"]
    operations = {
        (path, method): operation
        for path, methods in paths.items()
        for method, operation in methods.items()
    }
    limited = {key for key, operation in operations.items() if "429" in operation["responses"]}
    writes = {
        key
        for key in operations
        if key[1] in ("post", "put", "patch", "delete") and not key[0].startswith("/auth/")
    }

    assert writes, "no writes found"
    assert limited == writes | {("/auth/token/", "post")}
    for key in limited:
        headers = operations[key]["responses"]["429"]["headers"]
        assert "Retry-After" in headers, key
