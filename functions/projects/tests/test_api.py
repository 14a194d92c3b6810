"""The projects function's endpoints, against PostgreSQL."""

import json
from datetime import timedelta

from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken

from common.domain.models import Comment, Project, Task
from common.tests.base import APITest, iso
from common.tests.factories import (
    CommentFactory,
    ProjectFactory,
    SummaryReportFactory,
    TaskFactory,
    UserFactory,
)

urls = override_settings(ROOT_URLCONF="functions.projects.urls")


class LambdaContext:
    """The little of a Lambda context that Mangum reads."""

    function_name = "taskwire-test"
    aws_request_id = "req-1"


def project_body(project: Project, role: str = "owner") -> dict:
    """The project as a caller with `role` in it reads it."""
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "owner": project.owner.username if project.owner else None,
        "role": role,
        "created_at": iso(project.created_at),
        "updated_at": iso(project.updated_at),
    }


@urls
class ProjectCreateTests(APITest):
    def test_creating_a_project_answers_201_with_the_whole_project(self):
        response = self.client.post(
            "/projects/", {"name": "  Apollo  ", "description": "Moon"}, format="json"
        )

        self.assertEqual(response.status_code, 201)
        project = Project.objects.get()
        self.assertEqual(response.json(), project_body(project))
        self.assertEqual(project.name, "Apollo")
        self.assertEqual(project.owner, self.user)

    def test_description_defaults_to_an_empty_string(self):
        response = self.client.post("/projects/", {"name": "Apollo"}, format="json")

        self.assertEqual(response.status_code, 201)
        self.assertEqual(response.json()["description"], "")

    def test_read_only_fields_sent_by_the_client_are_ignored(self):
        other = UserFactory()
        response = self.client.post(
            "/projects/",
            {
                "name": "Apollo",
                "id": 999,
                "owner": other.username,
                "created_at": "2000-01-01T00:00:00Z",
            },
            format="json",
        )

        self.assertEqual(response.status_code, 201)
        self.assertNotEqual(response.json()["id"], 999)
        self.assertEqual(response.json()["owner"], "alice")
        self.assertNotEqual(response.json()["created_at"], "2000-01-01T00:00:00Z")

    def test_a_missing_blank_or_too_long_name_is_refused_and_nothing_is_stored(self):
        cases = {
            "missing": ({}, "This field is required."),
            "blank": ({"name": "   "}, "This field may not be blank."),
            "too long": ({"name": "x" * 256}, "Ensure this field has no more than 255 characters."),
            "null": ({"name": None}, "This field may not be null."),
        }
        for case, (body, message) in cases.items():
            with self.subTest(case):
                response = self.client.post("/projects/", body, format="json")
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.json(), {"name": [message]})
        self.assertFalse(Project.objects.exists())

    def test_a_name_of_255_characters_is_accepted(self):
        response = self.client.post("/projects/", {"name": "x" * 255}, format="json")

        self.assertEqual(response.status_code, 201)

    def test_malformed_json_is_a_400_with_a_detail(self):
        response = self.client.post("/projects/", data="{not json", content_type="application/json")

        self.assertEqual(response.status_code, 400)
        self.assertIn("JSON parse error", response.json()["detail"])

    def test_a_body_that_is_not_an_object_is_a_400(self):
        response = self.client.post("/projects/", data="[1, 2]", content_type="application/json")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(list(response.json()), ["non_field_errors"])

    def test_a_form_body_is_refused_with_415(self):
        response = self.client.post(
            "/projects/", data="name=Apollo", content_type="application/x-www-form-urlencoded"
        )

        self.assertEqual(response.status_code, 415)
        self.assertEqual(
            response.json(),
            {"detail": 'Unsupported media type "application/x-www-form-urlencoded" in request.'},
        )
        self.assertFalse(Project.objects.exists())

    def test_a_body_over_one_mebibyte_is_refused_with_413(self):
        # The limit is in front of Django (common.infra.asgi), so this goes through the function's
        # application as AWS Lambda calls it, not through the test client.
        from functions.projects.handler import handler
        from functions.tests.events import http_api_v2

        body = {"name": "Apollo", "description": "x" * (1024 * 1024)}
        bearer = {"authorization": f"Bearer {AccessToken.for_user(self.user)}"}

        answer = handler(
            http_api_v2("POST", "/projects/", headers=bearer, body=body), LambdaContext()
        )

        self.assertEqual(answer["statusCode"], 413)
        self.assertEqual(json.loads(answer["body"]), {"detail": "Request body over 1048576 bytes."})
        self.assertEqual(answer["headers"]["x-content-type-options"], "nosniff")
        self.assertFalse(Project.objects.exists())


@urls
class ProjectReadTests(APITest):
    def test_the_list_is_a_page_of_projects_by_id(self):
        projects = [
            ProjectFactory(owner=self.user),
            ProjectFactory(owner=None, members=[self.user]),
            ProjectFactory(members=[(self.user, "viewer")]),
        ]
        ProjectFactory()  # not alice's: not listed, not counted

        with self.assertNumQueries(4):  # the caller, their memberships, the count, the page
            response = self.client.get("/projects/")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.json(),
            {
                "count": 3,
                "next": None,
                "previous": None,
                "results": [
                    project_body(projects[0], "owner"),
                    project_body(projects[1], "member"),
                    project_body(projects[2], "viewer"),
                ],
            },
        )

    def test_list_query_count_does_not_grow_with_the_page(self):
        ProjectFactory.create_batch(40, owner=self.user)

        with self.assertNumQueries(4):
            response = self.client.get("/projects/")

        self.assertEqual(len(response.json()["results"]), 40)

    def test_pages_link_to_each_other_and_page_size_is_clamped_at_200(self):
        ProjectFactory.create_batch(5, owner=self.user)

        page = self.client.get("/projects/?page=2&page_size=2").json()
        self.assertEqual(page["count"], 5)
        self.assertEqual(len(page["results"]), 2)
        self.assertEqual(page["next"], "http://testserver/projects/?page=3&page_size=2")
        self.assertEqual(page["previous"], "http://testserver/projects/?page_size=2")

        ProjectFactory.create_batch(250, owner=self.user)
        self.assertEqual(len(self.client.get("/projects/?page_size=1000").json()["results"]), 200)
        self.assertEqual(len(self.client.get("/projects/").json()["results"]), 50)

    def test_a_page_past_the_end_is_a_404(self):
        response = self.client.get("/projects/?page=9")

        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"detail": "Invalid page."})

    def test_search_matches_name_or_description_case_insensitively(self):
        apollo = ProjectFactory(owner=self.user, name="Apollo")
        gemini = ProjectFactory(owner=self.user, name="Gemini", description="before APOLLO")
        ProjectFactory(owner=self.user, name="Mercury")

        response = self.client.get("/projects/?search=apollo")

        self.assertEqual([p["id"] for p in response.json()["results"]], [apollo.id, gemini.id])

    def test_ordering_by_each_allowed_field(self):
        b, a, c = (
            ProjectFactory(owner=self.user, name="b"),
            ProjectFactory(owner=self.user, name="a"),
            ProjectFactory(owner=self.user, name="c"),
        )

        for ordering, expected in {
            "name": [a, b, c],
            "-name": [c, b, a],
            "-id": [c, a, b],
            "created_at": [b, a, c],
            "-updated_at": [c, a, b],
        }.items():
            with self.subTest(ordering):
                response = self.client.get(f"/projects/?ordering={ordering}")
                self.assertEqual(
                    [p["id"] for p in response.json()["results"]], [p.id for p in expected]
                )

    def test_an_unknown_ordering_is_a_400(self):
        response = self.client.get("/projects/?ordering=owner")

        self.assertEqual(response.status_code, 400)
        self.assertIn("ordering", response.json())

    def test_retrieving_a_project(self):
        project = ProjectFactory(owner=self.user, description="desc")

        response = self.client.get(f"/projects/{project.id}/")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), project_body(project))

    def test_unknown_ids_are_404_with_a_detail(self):
        for path in ["/projects/999/", "/projects/99999999999999999999999/", "/projects/abc/"]:
            with self.subTest(path):
                response = self.client.get(path)
                self.assertEqual(response.status_code, 404)
                self.assertIn("detail", response.json())


@urls
class ProjectWriteTests(APITest):
    def test_put_replaces_the_writable_fields(self):
        project = ProjectFactory(owner=self.user, name="Old", description="old")

        response = self.client.put(f"/projects/{project.id}/", {"name": "New"}, format="json")

        self.assertEqual(response.status_code, 200)
        project.refresh_from_db()
        self.assertEqual((project.name, project.description), ("New", "old"))
        self.assertEqual(response.json(), project_body(project))

    def test_put_without_a_name_is_a_400(self):
        project = ProjectFactory(owner=self.user, name="Old")

        response = self.client.put(f"/projects/{project.id}/", {"description": "d"}, format="json")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json(), {"name": ["This field is required."]})
        project.refresh_from_db()
        self.assertEqual(project.description, "")

    def test_patch_changes_only_what_it_names(self):
        project = ProjectFactory(owner=self.user, name="Keep", description="old")

        response = self.client.patch(
            f"/projects/{project.id}/", {"description": "new"}, format="json"
        )

        self.assertEqual(response.status_code, 200)
        self.assertEqual((response.json()["name"], response.json()["description"]), ("Keep", "new"))

    def test_writing_an_unknown_project_is_a_404(self):
        for method in ("put", "patch", "delete"):
            with self.subTest(method):
                response = getattr(self.client, method)(
                    "/projects/999/", {"name": "x"}, format="json"
                )
                self.assertEqual(response.status_code, 404)

    def test_deleting_a_project_deletes_its_tasks_and_their_comments(self):
        project = ProjectFactory(owner=self.user)
        task = TaskFactory(project=project)
        CommentFactory.create_batch(2, task=task)
        kept = CommentFactory()

        response = self.client.delete(f"/projects/{project.id}/")

        self.assertEqual(response.status_code, 204)
        self.assertEqual(response.content, b"")
        self.assertFalse(Project.objects.filter(id=project.id).exists())
        self.assertFalse(Task.objects.filter(project_id=project.id).exists())
        self.assertEqual(list(Comment.objects.all()), [kept])

    def test_a_method_the_resource_does_not_have_is_a_405(self):
        project = ProjectFactory(owner=self.user)

        response = self.client.post(f"/projects/{project.id}/", {"name": "x"}, format="json")

        self.assertEqual(response.status_code, 405)
        self.assertEqual(response.json(), {"detail": 'Method "POST" not allowed.'})


@urls
class ProjectSummaryTests(APITest):
    def test_a_project_without_reports_has_an_empty_page(self):
        project = ProjectFactory(owner=self.user)

        response = self.client.get(f"/projects/{project.id}/summaries/")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.json(), {"count": 0, "next": None, "previous": None, "results": []}
        )

    def test_reports_are_listed_newest_first_with_every_field(self):
        project = ProjectFactory(owner=self.user)
        older = SummaryReportFactory(
            project=project, date="2026-01-01", total=3, pending=2, completed=1
        )
        newer = SummaryReportFactory(project=project, date="2026-01-02", emailed_to="o@example.com")
        SummaryReportFactory()  # another project's

        response = self.client.get(f"/projects/{project.id}/summaries/")

        results = response.json()["results"]
        self.assertEqual([r["id"] for r in results], [newer.id, older.id])
        self.assertEqual(
            results[1],
            {
                "id": older.id,
                "project": project.id,
                "date": "2026-01-01",
                "generated_at": iso(older.generated_at),
                "total": 3,
                "pending": 2,
                "in_progress": 0,
                "completed": 1,
                "overdue": 0,
                "due_next_24h": 0,
                "completed_last_24h": 0,
                "created_last_24h": 0,
                "comments_last_24h": 0,
                "emailed_to": None,
                "email_status": "pending",
            },
        )

    def test_summaries_of_an_unknown_project_are_a_404(self):
        response = self.client.get("/projects/999/summaries/")

        self.assertEqual(response.status_code, 404)


@urls
class ProjectAuthTests(APITest):
    def test_every_project_endpoint_needs_a_valid_token(self):
        project = ProjectFactory(owner=self.user)
        expired = AccessToken.for_user(self.user)
        expired.set_exp(lifetime=-timedelta(seconds=1))
        for header in [
            None,
            "Bearer nonsense",
            f"Bearer {expired}",
            f"Token {AccessToken.for_user(self.user)}",
        ]:
            if header:
                self.client.credentials(HTTP_AUTHORIZATION=header)
            else:
                self.client.credentials()
            for method, path in [
                ("get", "/projects/"),
                ("post", "/projects/"),
                ("get", f"/projects/{project.id}/"),
                ("put", f"/projects/{project.id}/"),
                ("patch", f"/projects/{project.id}/"),
                ("delete", f"/projects/{project.id}/"),
                ("get", f"/projects/{project.id}/summaries/"),
            ]:
                with self.subTest(header=header, method=method, path=path):
                    response = getattr(self.client, method)(path, {"name": "x"}, format="json")
                    self.assertEqual(response.status_code, 401)
                    self.assertIn("detail", response.json())
        self.assertTrue(Project.objects.filter(id=project.id, name=project.name).exists())
