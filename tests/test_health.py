"""/healthz: what a load balancer polling every few seconds gets (the real server: test_deploy.py)."""
import pytest
from django.db import connection
from django.test import Client

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_in_json_without_signing_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert response["Content-Type"] == "application/json"


def test_healthz_sets_no_cookie_and_is_never_cached(client):
    response = client.get("/healthz")
    assert not response.cookies
    assert response["Cache-Control"] == "no-store"


def test_healthz_answers_a_load_balancer_that_polls_by_ip_address():
    response = Client(HTTP_HOST="10.1.2.3:8000").get("/healthz")
    assert response.status_code == 200
    assert Client(HTTP_HOST="10.1.2.3:8000").get("/admin/login/").status_code == 400  # the rest stays closed


def test_healthz_answers_head_and_refuses_post(client):
    assert client.head("/healthz").status_code == 200
    assert client.get("/healthz/").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_healthz_costs_two_small_queries(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        client.get("/healthz")


def test_healthz_answers_503_with_the_reason_when_the_database_is_not_migrated(client):
    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute("ALTER TABLE accounts_account RENAME TO accounts_account_elsewhere")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "error", "database": "error", "reason": "the database is not migrated (run manage.py migrate)",
    }
