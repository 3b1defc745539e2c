import inspect

import anyjob
import anyjob.instrumentation
import anyjob.testing


def _public_names(module: object) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions.
    if name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


def test_all_is_sorted_and_lists_every_public_name() -> None:
    for module in (anyjob, anyjob.instrumentation, anyjob.testing):
        assert module.__all__ == sorted(module.__all__, key=_isort_key), module.__name__
        assert len(set(module.__all__)) == len(module.__all__), module.__name__
        assert set(module.__all__) == _public_names(module), module.__name__


def test_contract_names_are_importable() -> None:
    for name in [
        "State", "Job", "Context", "wrap", "JobStats", "Executor", "Retry", "ExecutorStats",
        "JobError", "JobStateError", "JobCanceledError", "CooldownError", "AlreadySucceededError",
        "JobNotFoundError",
    ]:  # fmt: skip
        assert hasattr(anyjob, name), name


def test_error_tree() -> None:
    assert issubclass(anyjob.JobError, Exception)
    assert issubclass(anyjob.JobStateError, anyjob.JobError)
    assert issubclass(anyjob.JobStateError, RuntimeError)
    assert issubclass(anyjob.JobNotFoundError, anyjob.JobError)
    assert issubclass(anyjob.JobNotFoundError, LookupError)
    for cls in (anyjob.JobCanceledError, anyjob.CooldownError, anyjob.AlreadySucceededError):
        assert issubclass(cls, anyjob.JobError)
    error = anyjob.CooldownError("cooldown", remaining=1.5, job_id="x")
    assert error.remaining == 1.5
    assert error.job_id == "x"
    assert anyjob.JobStateError("m", job_id="j").job_id == "j"


def test_public_docstrings() -> None:
    for name in anyjob.__all__:
        assert inspect.getdoc(getattr(anyjob, name)), name


def test_py_typed_is_shipped() -> None:
    from importlib.resources import files

    assert files("anyjob").joinpath("py.typed").is_file()
