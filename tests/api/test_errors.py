"""One shape for every 422 of /api/v1, whoever refused the input, and the OpenAPI document says it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import DEMO_EMAIL, DEMO_PASSWORD

SHAPE = {"loc", "msg", "type"}


def errors(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    assert isinstance(detail, list)
    assert detail
    assert all(set(error) == SHAPE for error in detail), detail
    return detail


def bearer(client: TestClient) -> dict[str, str]:
    pair = client.post("/api/v1/auth/token", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD}).json()
    return {"Authorization": f"Bearer {pair['access_token']}"}


def test_a_schema_refusal_names_the_field_and_never_echoes_the_value(client: TestClient) -> None:
    secret = "x" * 2000  # over the password's 1024 characters
    detail = errors(client.post("/api/v1/auth/token", json={"email": DEMO_EMAIL, "password": secret}))
    assert detail[0]["loc"] == ["body", "password"]
    assert "1024" in detail[0]["msg"]
    assert secret not in str(detail)


def test_a_missing_body_and_a_bad_query_parameter_use_the_same_shape(client: TestClient) -> None:
    assert errors(client.post("/api/v1/auth/token"))[0]["loc"][0] == "body"
    detail = errors(client.get("/api/v1/alerts", params={"limit": "many"}, headers=bearer(client)))
    assert detail[0]["loc"] == ["query", "limit"]


def test_a_service_refusal_has_the_same_shape(client: TestClient) -> None:
    """The current password is checked by the users service, not the schema."""
    attempt = {"current_password": "not it", "new_password": "a brand new password"}
    detail = errors(client.put("/api/v1/me/password", json=attempt, headers=bearer(client)))
    assert detail == [{"loc": ["body", "current_password"], "msg": "This is not your current password.",
                       "type": "value_error"}]


def test_the_openapi_document_describes_the_shape_on_every_422(client: TestClient) -> None:
    document = client.get("/api/openapi.json").json()
    field_error = document["components"]["schemas"]["ValidationError"]
    assert set(field_error["properties"]) == SHAPE
    assert set(field_error["required"]) == SHAPE
    answers = [operation["responses"]["422"] for operations in document["paths"].values()
               for operation in operations.values() if "422" in operation["responses"]]
    assert len(answers) > 20
    problem = {"$ref": "#/components/schemas/HTTPValidationError"}
    assert all(answer["content"]["application/json"]["schema"] == problem for answer in answers)
    password = document["paths"]["/api/v1/me/password"]["put"]["responses"]["422"]
    assert password["description"] == "Wrong current password"  # the route's own words are kept
