"""The error tree: every error is an OrchestratorError (or a documented exception), the tree in
core/errors.py's docstring names them all, and every one survives a pickle round trip (pickle is used
by this test only: Celery's result machinery and multiprocessing move exceptions so)."""

from __future__ import annotations

import pickle

import pytest

from orchestrator import errors
from orchestrator.core import errors as core_errors
from orchestrator.core.errors import FailureDetails, NonDeterminismError, OrchestratorError, TaskFailedError
from orchestrator.http.prometheus import MetricsUnavailable
from orchestrator.http.server import ExposureError

DETAILS = FailureDetails("card declined", "billing.Declined", "Traceback ...", retry_after_ms=250)


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def _instances() -> list[BaseException]:
    made: list[BaseException] = [
        TaskFailedError("'charge' failed: billing.Declined: card declined", DETAILS),
        NonDeterminismError("checkout", "order-7", 12, "TaskScheduled 'charge' (#3)", "asked for a timer", step=4),
        errors.RedisUnavailableError("Redis at redis://localhost:1 is unreachable"),
        errors.RedisAuthError("Redis at redis://localhost:1 refused the credentials"),
        ExposureError("refusing to serve on 0.0.0.0"),
        MetricsUnavailable("prometheus_client is not installed"),
    ]
    simple = [cls for cls in _all_subclasses(OrchestratorError)
              if cls not in (TaskFailedError, NonDeterminismError) and cls.__module__.startswith("orchestrator")]
    made += [cls(f"{cls.__name__} happened") for cls in simple]
    return made


@pytest.mark.parametrize("error", _instances(), ids=lambda e: type(e).__name__)
def test_every_error_survives_a_pickle_round_trip(error: BaseException) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error) and copy.args == error.args
    assert copy.__dict__ == error.__dict__


def test_the_round_trip_keeps_what_callers_read() -> None:
    failed = pickle.loads(pickle.dumps(TaskFailedError("failed", DETAILS)))
    assert failed.details == DETAILS and failed.error_type == "billing.Declined"
    nd = pickle.loads(pickle.dumps(NonDeterminismError("wf", "i-1", 3, "recorded x", "asked for y", step=2)))
    assert (nd.workflow, nd.instance_id, nd.position, nd.step, nd.recorded, nd.requested) == \
        ("wf", "i-1", 3, 2, "recorded x", "asked for y")


def test_every_error_is_in_the_tree_and_drawn_in_its_docstring() -> None:
    tree = core_errors.__doc__ or ""
    ours = {cls for cls in _all_subclasses(OrchestratorError) if cls.__module__.startswith("orchestrator")}
    assert {cls.__name__ for cls in ours} >= {"PayloadError", "HistoryFormatError", "RerunError", "NonRetryableError",
                                               "ExposureError", "MetricsUnavailable"}
    missing = sorted(cls.__name__ for cls in ours if f"+-- {cls.__name__}" not in tree)
    assert missing == []
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, BaseException) and not issubclass(value, OrchestratorError):
            assert name in tree, f"{name} is outside the tree but not documented as such"
