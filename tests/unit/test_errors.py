"""The error tree: which class a Status becomes, and what each error says."""

from __future__ import annotations

import pickle

import pytest

from kubesync import errors
from kubesync.errors import Status, error_for_status


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (400, "BadRequest", errors.BadRequest),
        (401, "Unauthorized", errors.Unauthorized),
        (403, "Forbidden", errors.Forbidden),
        (404, "NotFound", errors.NotFound),
        (405, "MethodNotAllowed", errors.MethodNotAllowed),
        (409, "Conflict", errors.Conflict),
        (409, "AlreadyExists", errors.AlreadyExists),
        (410, "Expired", errors.Gone),
        (422, "Invalid", errors.Invalid),
        (422, "Other", errors.UnprocessableBody),
        (429, "TooManyRequests", errors.TooManyRequests),
        (500, "InternalError", errors.ServerError),
        (503, "ServiceUnavailable", errors.ServerError),
        (418, "Teapot", errors.ApiError),
    ],
)
def test_each_status_code_maps_to_its_error_class(code: int, reason: str, cls: type) -> None:
    err = error_for_status(Status(code=code, reason=reason, message="m"))
    assert type(err) is cls
    assert isinstance(err, errors.ApiError) and isinstance(err, errors.KubeError)
    assert err.code == code and err.reason == reason


def test_not_found_is_also_a_lookup_error_and_already_exists_a_conflict() -> None:
    assert isinstance(error_for_status(Status(code=404)), LookupError)
    assert isinstance(error_for_status(Status(code=409, reason="AlreadyExists")), errors.Conflict)


def test_invalid_lists_field_causes_in_its_message() -> None:
    status = Status.from_dict(
        {
            "kind": "Status",
            "code": 422,
            "reason": "Invalid",
            "message": 'ConfigMap "x" is invalid',
            "details": {"causes": [{"field": "metadata.name", "message": "bad name"}]},
        }
    )
    err = error_for_status(status, method="POST", url="https://h/api/v1/configmaps")
    assert isinstance(err, errors.Invalid)
    assert err.causes[0].field == "metadata.name"
    assert "metadata.name: bad name" in str(err)
    assert "POST https://h/api/v1/configmaps" in str(err)


def test_retry_after_comes_from_the_argument_else_from_status_details() -> None:
    status = Status(code=429, details={"retryAfterSeconds": 7})
    assert error_for_status(status).retry_after == 7.0
    assert error_for_status(status, retry_after=2.5).retry_after == 2.5
    assert error_for_status(Status(code=429)).retry_after is None


def test_api_error_pickles_with_its_class_status_and_headers() -> None:
    err = error_for_status(
        Status(code=404, reason="NotFound", message="gone"),
        method="GET",
        url="https://h/api",
        headers={"Audit-Id": "abc"},
        retry_after=1.0,
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is errors.NotFound
    assert (back.status, back.method, back.url) == (err.status, "GET", "https://h/api")
    assert back.headers == {"Audit-Id": "abc"} and back.retry_after == 1.0


def test_config_error_names_file_and_key() -> None:
    err = errors.ConfigError("must be a string", source="/k/config", key="users[a].user.token")
    assert str(err) == "must be a string (file /k/config, key users[a].user.token)"
    assert (err.message, err.source, err.key) == (
        "must be a string",
        "/k/config",
        "users[a].user.token",
    )


def test_exec_plugin_error_shows_stderr_and_install_hint() -> None:
    err = errors.ExecPluginError(
        "the exec plugin 'aws' failed with exit status 2",
        command="aws",
        exit_code=2,
        stderr="  no credentials\n",
        install_hint="Install the AWS CLI",
        source="/k/config",
    )
    assert isinstance(err, errors.ConfigError)
    text = str(err)
    assert "no credentials" in text and "Install the AWS CLI" in text and "/k/config" in text
    assert (err.exit_code, err.stderr.strip(), err.message) == (
        2,
        "no credentials",
        "the exec plugin 'aws' failed with exit status 2",
    )


def test_connect_timeout_is_both_a_connect_error_and_a_timeout() -> None:
    err = errors.ConnectTimeout("connect timed out", method="GET", url="https://h/api")
    assert isinstance(err, errors.ConnectError) and isinstance(err, errors.TimeoutError)
    assert str(err) == "connect timed out (GET https://h/api)"
    assert issubclass(errors.TLSError, errors.ConnectError)


def test_kube_warning_is_a_user_warning() -> None:
    assert issubclass(errors.KubeWarning, UserWarning)
    assert issubclass(errors.InsecureTLSWarning, errors.KubeWarning)
