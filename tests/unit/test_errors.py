"""The error tree: which class a Status becomes, and what each error says."""

from __future__ import annotations

import builtins
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


def test_invalid_names_each_cause_once_when_the_message_already_holds_them() -> None:
    cause = 'metadata.name: Invalid value: "X": a lowercase RFC 1123 subdomain'
    status = Status.from_dict({
        "kind": "Status", "code": 422, "reason": "Invalid",
        "message": f'ConfigMap "X" is invalid: {cause}',
        "details": {"name": "X", "kind": "configmaps", "causes": [
            {"reason": "FieldValueInvalid", "field": "metadata.name",
             "message": 'Invalid value: "X": a lowercase RFC 1123 subdomain'},
            {"reason": "FieldValueRequired", "field": "data", "message": "Required value"},
        ]},
    })
    text = str(error_for_status(status))
    assert text.count(cause) == 1
    assert text.count("data: Required value") == 1


def test_status_details_are_typed() -> None:
    status = Status.from_dict({
        "kind": "Status", "code": 409, "reason": "AlreadyExists",
        "details": {"name": "web", "group": "apps", "kind": "deployments", "uid": "u-1",
                    "retryAfterSeconds": 3,
                    "causes": [{"reason": "FieldValueInvalid", "message": "m", "field": "f"}]},
    })
    d = status.details
    assert isinstance(d, errors.StatusDetails)
    assert (d.name, d.group, d.kind, d.uid, d.retry_after_seconds) == (
        "web", "apps", "deployments", "u-1", 3)
    assert d.causes == (errors.StatusCause("FieldValueInvalid", "m", "f"),)
    assert status.causes == d.causes and d.extra == {}


@pytest.mark.parametrize(
    "details",
    [
        {},
        {"name": "web", "kind": "pods", "causes": [{"field": "f", "message": "m"}]},
        {"name": "web", "futureKey": {"a": 1}, "retryAfterSeconds": 2},
        {"name": 7, "retryAfterSeconds": "soon", "causes": "not a list"},
        {"causes": [{"field": "f", "message": "m", "futureKey": True}]},
        {"causes": [{"field": "f"}, "not a mapping"]},
    ],
)
def test_status_details_round_trip_losslessly(details: dict) -> None:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "m",
            "reason": "Conflict", "details": details, "code": 409}
    assert Status.from_dict(body).to_dict() == body


def test_status_details_read_by_key_warns_and_still_answers() -> None:
    status = Status(code=404, details={"name": "web", "kind": "pods"})
    with pytest.warns(DeprecationWarning, match="StatusDetails"):
        assert status.details["name"] == "web"
    with pytest.warns(DeprecationWarning):
        assert status.details.get("group", "none") == "none"


def test_status_with_typed_details_pickles() -> None:
    err = error_for_status(Status(code=422, reason="Invalid", details={
        "name": "x", "causes": [{"field": "f", "message": "m"}], "futureKey": 1}))
    back = pickle.loads(pickle.dumps(err))
    assert back.status == err.status and back.causes[0].field == "f"


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
    assert isinstance(err, errors.ConnectError) and isinstance(err, errors.RequestTimeout)
    assert str(err) == "connect timed out (GET https://h/api)"
    assert issubclass(errors.TLSError, errors.ConnectError)


def test_request_timeouts_are_caught_by_the_builtin_timeout_error() -> None:
    for cls in (errors.RequestTimeout, errors.ConnectTimeout):
        with pytest.raises(builtins.TimeoutError):
            raise cls("read timed out", method="GET", url="https://h/api")
    assert issubclass(errors.RequestTimeout, errors.TransportError)


def test_request_timeout_pickles_with_its_message_method_and_url() -> None:
    for cls in (errors.RequestTimeout, errors.ConnectTimeout):
        err = cls("read timed out", method="GET", url="https://h/api")
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is cls
        assert (str(back), back.method, back.url) == (str(err), "GET", "https://h/api")


def test_the_old_timeout_error_name_warns_and_is_request_timeout() -> None:
    with pytest.warns(DeprecationWarning, match="RequestTimeout"):
        old = errors.TimeoutError
    assert old is errors.RequestTimeout
    assert "TimeoutError" not in errors.__all__  # a star import must not shadow the builtin


def test_kube_warning_is_a_user_warning() -> None:
    assert issubclass(errors.KubeWarning, UserWarning)
    assert issubclass(errors.InsecureTLSWarning, errors.KubeWarning)
