"""The per-client limit on failed authentications: a sliding minute, bounded memory."""

from mirisk.gateway.auth_failures import AuthFailures


def test_a_client_is_held_off_for_the_rest_of_the_minute_and_then_let_back():
    failures = AuthFailures(per_minute=3)
    for second in (0.0, 10.0, 20.0):
        assert failures.retry_after("10.0.0.1", second) is None
        failures.failed("10.0.0.1", second)
    assert failures.retry_after("10.0.0.1", 30.0) == 30  # the failure at 0 s leaves the minute at 60 s
    assert failures.retry_after("10.0.0.2", 30.0) is None  # other clients are not affected
    assert failures.retry_after("10.0.0.1", 60.5) is None


def test_only_the_most_recently_failing_clients_are_remembered():
    failures = AuthFailures(per_minute=1, max_clients=2)
    for client in ("a", "b", "c"):
        failures.failed(client, 0.0)
    assert failures.retry_after("a", 1.0) is None  # forgotten first
    assert failures.retry_after("b", 1.0) == 59 and failures.retry_after("c", 1.0) == 59
    assert failures.retry_after(None, 1.0) is None  # no address: no limit (a test client or a socket)
