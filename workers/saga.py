"""Compensation (saga): book a trip as flight, hotel and car; if a booking fails, cancel the ones
already made, newest first, then fail with the original error. See README "Compensation (saga)".

Run a pool with ``orchestrator worker workers.saga`` and start ``book_trip`` with
``{"trip_id": "t1", "fail_car": true}``. Bookings are kept in Redis (``REDIS_URL``), in the hash
``saga:bookings:<trip_id>``, so you can check that a failed trip leaves none behind.

Why it is safe: every step is an activity, so it runs at least once; bookings and cancellations are
idempotent (keyed by trip and kind), so a retry or a redelivery after a crash does no harm. The list of
compensations is plain workflow state, rebuilt by replay after any crash, so a pool killed halfway
through the cancellations resumes them where it stopped.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import redis

from orchestrator import DaprWorkflowContext, RetryPolicy, TaskFailedError, WorkflowActivityContext, WorkflowRuntime

wfr = WorkflowRuntime()
celery_app = wfr.celery_app  # for plain `celery -A workers.saga:celery_app worker`
_redis: redis.Redis | None = None


class NoAvailabilityError(Exception):
    """Nothing left to book: retrying will not help, so the policies below list it as non-retryable."""


# Transient errors (timeouts, connection resets) are retried; "sold out" is not.
BOOKING_POLICY = RetryPolicy(first_retry_interval=timedelta(seconds=1), backoff_coefficient=2,
                             max_number_of_attempts=3, non_retryable_error_types=[NoAvailabilityError])
# A compensation must eventually succeed, so it is retried far more patiently.
COMPENSATION_POLICY = RetryPolicy(first_retry_interval=timedelta(seconds=1), backoff_coefficient=2,
                                  max_number_of_attempts=10, max_retry_interval=timedelta(minutes=5))


def _r() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    return _redis


def bookings_key(trip_id: str) -> str:
    return f"saga:bookings:{trip_id}"


def _book(kind: str, trip: dict[str, Any]) -> dict[str, str]:
    if trip.get(f"fail_{kind}"):
        raise NoAvailabilityError(f"no {kind} available for trip {trip['trip_id']}")
    booking = {"kind": kind, "trip_id": trip["trip_id"], "booking_id": f"{kind}-{trip['trip_id']}"}
    _r().hset(bookings_key(trip["trip_id"]), kind, booking["booking_id"])  # idempotent
    return booking


def _cancel(booking: dict[str, str]) -> str:
    _r().hdel(bookings_key(booking["trip_id"]), booking["kind"])  # idempotent: cancelling twice is fine
    return booking["booking_id"]


@wfr.activity(name="book_flight")
def book_flight(ctx: WorkflowActivityContext, trip: dict) -> dict:
    return _book("flight", trip)


@wfr.activity(name="book_hotel")
def book_hotel(ctx: WorkflowActivityContext, trip: dict) -> dict:
    return _book("hotel", trip)


@wfr.activity(name="book_car")
def book_car(ctx: WorkflowActivityContext, trip: dict) -> dict:
    return _book("car", trip)


@wfr.activity(name="cancel_flight")
def cancel_flight(ctx: WorkflowActivityContext, booking: dict) -> str:
    return _cancel(booking)


@wfr.activity(name="cancel_hotel")
def cancel_hotel(ctx: WorkflowActivityContext, booking: dict) -> str:
    return _cancel(booking)


@wfr.activity(name="cancel_car")
def cancel_car(ctx: WorkflowActivityContext, booking: dict) -> str:
    return _cancel(booking)


# Each step with the activity that undoes it.
STEPS = [(book_flight, cancel_flight), (book_hotel, cancel_hotel), (book_car, cancel_car)]


@wfr.workflow(name="book_trip")
def book_trip(ctx: DaprWorkflowContext, trip: dict):
    compensations = []  # (undo activity, booking) for every step that succeeded, in order
    try:
        for book, cancel in STEPS:
            booking = yield ctx.call_activity(book, input=trip, retry_policy=BOOKING_POLICY)
            compensations.append((cancel, booking))
    except TaskFailedError as failure:
        cancelled, left_behind = [], []
        for cancel, booking in reversed(compensations):
            try:
                yield ctx.call_activity(cancel, input=booking, retry_policy=COMPENSATION_POLICY)
                cancelled.append(booking["booking_id"])
            except TaskFailedError:
                left_behind.append(booking["booking_id"])  # keep undoing the rest; report it below
        ctx.set_custom_status({"compensated": cancelled, "left_behind": left_behind})
        raise failure  # the trip failed: its state carries the original error
    return {"trip_id": trip["trip_id"], "bookings": [booking["booking_id"] for _, booking in compensations]}
