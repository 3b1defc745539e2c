"""anyjob._error_text.traceback_text: the traceback a job record keeps, bounded, storable, never raising."""

from __future__ import annotations

import sys
import traceback

import pytest

from anyjob import Context, Job, State, _error_text
from anyjob._error_text import MAX_STORED_TRACEBACK_LENGTH, error_traceback, traceback_text
from anyjob._job import MAX_TRACEBACK_LENGTH, error_text


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


def _deep(depth: int, message: str) -> None:
    if depth:
        _deep(depth - 1, message)
    raise ValueError(message)


def _storable(text: str) -> None:
    assert "\x00" not in text
    text.encode("utf-8")  # no lone surrogate


def test_a_plain_traceback_is_what_format_exception_gives() -> None:
    try:
        _deep(2, "bad value")
    except ValueError as exc:
        text = traceback_text(exc)
        expected = "".join(traceback.format_exception(exc))
    assert text == expected
    assert text.startswith("Traceback (most recent call last):")
    assert "_deep" in text
    assert text.endswith("ValueError: bad value\n")


def test_causes_and_contexts_are_included() -> None:
    try:
        try:
            _deep(0, "inner")
        except ValueError as inner:
            msg = "outer"
            raise RuntimeError(msg) from inner
    except RuntimeError as exc:
        text = traceback_text(exc)
    assert "ValueError: inner" in text
    assert "direct cause" in text
    assert text.endswith("RuntimeError: outer\n")


def test_an_unraised_exception_gives_its_type_and_message() -> None:
    assert traceback_text(ValueError("never raised")) == "ValueError: never raised\n"


def test_the_text_is_storable() -> None:
    text = traceback_text(_raised(ValueError("file \udcff.txt\x00end")))
    _storable(text)
    assert "file" in text
    assert "end" in text
    assert "\\x00" in text  # escaped, not dropped


def test_a_long_traceback_keeps_its_head_and_its_end() -> None:
    exc = _raised(ValueError("y" * 100_000 + " the end"))
    text = traceback_text(exc)
    assert len(text) <= MAX_STORED_TRACEBACK_LENGTH
    assert text.startswith("Traceback (most recent call last):")
    assert "characters left out" in text
    assert text.endswith(" the end\n")  # the end, where the error is, is kept
    full = "".join(traceback.format_exception(exc))
    left_out = int(text.split("... (")[1].split(" characters")[0])
    head, _, tail = text.partition(f"\n... ({left_out} characters left out) ...\n")
    assert full.startswith(head)
    assert full.endswith(tail)
    assert len(head) + left_out + len(tail) == len(full)
    assert len(tail) > len(head)  # mostly the end


def test_escaping_cannot_push_it_past_the_bound() -> None:
    text = traceback_text(_raised(ValueError("\x00" * MAX_STORED_TRACEBACK_LENGTH)))
    assert len(text) <= MAX_STORED_TRACEBACK_LENGTH
    _storable(text)


def test_stored_tracebacks_are_bounded_tighter_than_error_traceback() -> None:
    exc = _raised(ValueError("z" * 40_000))
    assert len(traceback_text(exc)) <= MAX_STORED_TRACEBACK_LENGTH < len(error_traceback(exc))
    assert MAX_STORED_TRACEBACK_LENGTH == 16 * 1024


class UnprintableError(Exception):
    def __str__(self) -> str:
        msg = "no text for you"
        raise RuntimeError(msg)


def test_an_exception_whose_str_raises() -> None:
    text = traceback_text(_raised(UnprintableError()))
    assert "UnprintableError" in text
    assert text.startswith("Traceback")


def test_a_cyclic_cause_chain_ends() -> None:
    first = _raised(ValueError("first"))
    second = _raised(KeyError("second"))
    first.__cause__ = second
    second.__cause__ = first
    text = traceback_text(first)
    assert "ValueError: first" in text
    assert "KeyError: 'second'" in text
    self_caused = _raised(ValueError("me"))
    self_caused.__context__ = self_caused
    assert "ValueError: me" in traceback_text(self_caused)


def test_a_very_long_cause_chain_is_bounded() -> None:
    error: BaseException = ValueError("root")
    for i in range(3000):
        nxt = RuntimeError(f"level {i}")
        nxt.__cause__ = error
        error = nxt
    text = traceback_text(error)
    assert len(text) <= MAX_STORED_TRACEBACK_LENGTH
    assert text.rstrip().endswith("RuntimeError: level 2999")
    _storable(text)


def test_deeply_nested_exception_groups_are_bounded() -> None:
    group: BaseException = _raised(ValueError("leaf"))
    for _ in range(sys.getrecursionlimit() + 100):
        group = ExceptionGroup("nested", [group])
    group = _raised(group)
    text = traceback_text(group)
    assert len(text) <= MAX_STORED_TRACEBACK_LENGTH
    assert "ExceptionGroup" in text
    _storable(text)


def test_a_formatting_failure_gives_type_message_and_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RecursionError

    monkeypatch.setattr(_error_text.traceback, "format_exception", broken)
    try:
        _deep(1, "bad \x00 value")
    except ValueError as exc:
        text = traceback_text(exc)
    assert text.startswith("Traceback (most recent call last):")
    assert "_deep" in text  # the frames still
    assert "ValueError: bad \\x00 value" in text
    assert "could not be formatted: RecursionError" in text
    _storable(text)

    class LocalError(Exception):
        pass

    unraised = traceback_text(LocalError("x"))
    assert unraised.startswith(f"{__name__}.")
    assert "LocalError: x" in unraised


def test_broken_notes_and_frames_still_give_text(monkeypatch: pytest.MonkeyPatch) -> None:
    exc = _raised(ValueError("noted"))
    exc.__notes__ = 42  # type: ignore[attr-defined] - not a list: formatting copes or fails
    text = traceback_text(exc)
    assert "ValueError: noted" in text

    def broken(*args: object, **kwargs: object) -> list[str]:
        raise MemoryError

    monkeypatch.setattr(_error_text.traceback, "format_exception", broken)
    monkeypatch.setattr(_error_text.traceback, "format_tb", broken)
    text = traceback_text(UnprintableError())
    assert "UnprintableError" in text
    assert "could not be formatted: MemoryError" in text


# -- error text -------------------------------------------------------------------------


def test_error_text_never_raises_and_is_storable() -> None:
    text = error_text(UnprintableError())
    assert "UnprintableError" in text
    assert error_text(ValueError()) == "ValueError"
    odd = error_text(ValueError("file \udcff.txt\x00end"))
    assert "\x00" not in odd
    odd.encode("utf-8")  # no lone surrogate left
    assert "file" in odd
    assert "end" in odd
    long = error_text(ValueError("x" * 100_000))
    assert len(long) <= 4096
    assert long.startswith("xxx")


@pytest.mark.anyio
async def test_a_job_whose_error_cannot_print_itself_still_reports() -> None:
    async def fn(ctx: Context) -> None:
        raise UnprintableError

    job = Job(fn)
    await job.run()
    assert job.state is State.FAILED
    assert "UnprintableError" in (job.stats().error or "")


def _raise_nested(depth: int, message: str) -> None:
    if depth:
        _raise_nested(depth - 1, message)
    raise ValueError(message)


def test_error_traceback_is_bounded_sanitized_and_never_raises() -> None:
    try:
        _raise_nested(3, "bad \udcff byte\x00")
    except ValueError as exc:
        text = error_traceback(exc)
    assert text.startswith("Traceback (most recent call last):")
    assert "_raise_nested" in text
    assert "ValueError: bad" in text
    assert "\x00" not in text
    text.encode("utf-8")
    try:
        _raise_nested(2, "y" * 200_000)
    except ValueError as exc:
        big = error_traceback(exc)
    assert len(big) <= MAX_TRACEBACK_LENGTH
    assert big.startswith("Traceback")
    assert "characters left out" in big
    assert big.rstrip().endswith("y")  # the end, where the error is, is kept
    assert "UnprintableError" in error_traceback(UnprintableError())
    assert "ValueError" in error_traceback(ValueError("never raised"))
