from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from churnops_common.events import (
    EVENT_TYPES,
    BatchScored,
    DataLanded,
    DataRejected,
    ModelPromoted,
    ObjectRef,
    PsiBreached,
    RetrainRequested,
    parse_event,
    to_wire,
)

REF = ObjectRef(bucket="landing", key="new_data/a b.csv", etag="abc", size=10)


def test_every_event_round_trips_through_the_wire_form() -> None:
    samples = {
        "DataLanded": DataLanded(object=REF, kind="new_data"),
        "DataRejected": DataRejected(object=REF, quality_run_id="r1", reason="empty file"),
        "PsiBreached": PsiBreached(
            object=REF, quality_run_id="r1", features={"age": 0.3}, max_psi=0.3, threshold=0.2
        ),
        "BatchScored": BatchScored(
            input=REF,
            predictions=REF,
            scoring_run_id="s",
            model_name="m",
            model_version="1",
            rows=3,
        ),
        "RetrainRequested": RetrainRequested(reason="manual"),
    }
    for event in samples.values():
        wire = json.loads(json.dumps(to_wire(event)))
        assert parse_event(wire) == event
        assert parse_event(json.dumps(wire)) == event
    assert set(samples) <= set(EVENT_TYPES)


def test_events_are_frozen_and_reject_unknown_fields() -> None:
    event = RetrainRequested(reason="manual")
    with pytest.raises(ValidationError):
        event.reason = "schedule"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        parse_event({**to_wire(event), "surprise": 1})


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"event_type": "NoSuchEvent"},
        {"event_type": "RetrainRequested", "reason": "because"},
        {"event_type": "DataLanded", "kind": "new_data"},
        {"event_type": "RetrainRequested", "reason": "manual", "schema_version": 2},
        {"event_type": "RetrainRequested", "reason": "manual", "occurred_at": "2026-01-01T00:00"},
        "not json at all",
        [1, 2, 3],
    ],
)
def test_bad_payloads_are_validation_errors(payload: object) -> None:
    with pytest.raises(ValidationError):
        parse_event(payload)


def test_occurred_at_is_normalised_to_utc() -> None:
    local = datetime(2026, 11, 29, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    event = RetrainRequested(reason="manual", occurred_at=local)
    assert event.occurred_at.tzinfo == UTC
    assert event.occurred_at.hour == 10


def test_derived_events_are_deterministic_and_stay_in_the_chain() -> None:
    landed = DataLanded.start_chain(REF.versioned_uri, object=REF, kind="new_data")
    again = DataLanded.start_chain(REF.versioned_uri, object=REF, kind="new_data")
    assert landed.event_id == again.event_id == landed.correlation_id
    child = landed.derive(RetrainRequested, reason="drift")
    twin = again.derive(RetrainRequested, reason="drift")
    assert child.event_id == twin.event_id
    assert child.correlation_id == landed.correlation_id
    assert child.causation_id == landed.event_id
    assert landed.derive(RetrainRequested, "other", reason="drift").event_id != child.event_id


def test_landed_file_idempotency_key_is_bucket_key_etag() -> None:
    event = DataLanded(object=REF, kind="new_data")
    assert event.idempotency_key == "landing/new_data/a b.csv@abc"
    promoted = ModelPromoted(
        model_name="m", model_version="2", model_uri="models:/m/2", challenger_pr_auc=0.5
    )
    assert promoted.idempotency_key == promoted.event_id
