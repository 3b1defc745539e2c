import pytest

from anyjob import State
from anyjob._state import JOB_TRANSITIONS, RECORD_ONLY_TRANSITIONS

S = State


def test_values() -> None:
    assert [s.value for s in State] == [
        "created", "running", "canceling", "succeeded", "failed", "canceled",
    ]  # fmt: skip


def test_is_done_and_is_executing() -> None:
    assert {s for s in State if s.is_done} == {S.SUCCEEDED, S.FAILED, S.CANCELED}
    assert {s for s in State if s.is_executing} == {S.RUNNING, S.CANCELING}


# The contract, written out independently of the implementation's table.
JOB_EDGES = {
    (S.CREATED, S.RUNNING), (S.SUCCEEDED, S.RUNNING), (S.FAILED, S.RUNNING), (S.CANCELED, S.RUNNING),
    (S.RUNNING, S.CANCELING), (S.RUNNING, S.SUCCEEDED), (S.RUNNING, S.FAILED), (S.RUNNING, S.CANCELED),
    (S.CANCELING, S.CANCELED),
}  # fmt: skip
RECORD_EDGES = JOB_EDGES | {(S.CREATED, S.CANCELED), (S.FAILED, S.CREATED), (S.CANCELED, S.CREATED)}


@pytest.mark.parametrize("old", list(State))
@pytest.mark.parametrize("new", list(State))
def test_transition_table_matches_the_contract(old: State, new: State) -> None:
    assert old.can_become(new) == ((old, new) in JOB_EDGES)
    assert old.can_become(new, record=True) == ((old, new) in RECORD_EDGES)


def test_tables_cover_every_state() -> None:
    assert set(JOB_TRANSITIONS) == set(State) == set(RECORD_ONLY_TRANSITIONS)
