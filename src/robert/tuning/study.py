"""The Optuna study of ``conf/tune/*.yaml``: storage, sampler, pruner, created or continued.

Storage: any SQLAlchemy database URL. A relative ``sqlite:///`` path is taken from the project root
(default ``sqlite:///mlruns/optuna.db``); ``postgresql://user:password@host/db`` lets workers on many
machines share one study. Every worker records a heartbeat for its running trial, so the trial of a
killed worker is marked FAIL by the next worker that starts a trial (``tune.grace_period_s`` later):
a killed worker loses at most the trial it was running.

Sampler and pruner are named classes of ``optuna.samplers`` / ``optuna.pruners`` with their keyword
arguments. The sampler's seed is combined with ``tune.worker`` and the number of trials already in
the study, so a re-run or a second worker does not repeat the first worker's draws while one worker
on a fresh study always draws the same sequence.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from sqlalchemy.engine import URL, make_url

from robert.config_checks import check_choice, check_mapping, check_number, check_positive_int, require
from robert.errors import UserError
from robert.spectra.transforms import stable_seed

SQLITE_PREFIX = "sqlite:///"
CONNECT_TIMEOUT_S = 10  # an unreachable server host fails within this, instead of TCP's minutes


def resolve_storage_url(url: object, root: Path) -> str:
    """The storage URL with a relative SQLite path made absolute against the project root."""
    if not isinstance(url, str) or not url:
        raise UserError(f"tune.storage must be a database URL such as sqlite:///mlruns/optuna.db; got {url!r}")
    if url.startswith(SQLITE_PREFIX) and url != SQLITE_PREFIX:
        db = Path(url[len(SQLITE_PREFIX):])
        db = db if db.is_absolute() else (root / db).resolve()
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot reach the study storage {url}: cannot create {db.parent} ({exc.strerror})") \
                from None
        return f"{SQLITE_PREFIX}{db}"
    return url


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise UserError(f"tune.storage {url!r} is not a database URL (expected e.g. sqlite:///mlruns/optuna.db "
                        "or postgresql://user:password@host:5432/db)") from None


def display_url(url: str) -> str:
    """The URL with its password masked (for messages, logs and the MLflow parent run)."""
    return parse_url(url).render_as_string(hide_password=True)


def open_storage(tune: Mapping, root: Path) -> tuple[optuna.storages.RDBStorage, str]:
    """(the RDB storage with heartbeats, its URL for display); a one-line error naming an unreachable URL."""
    url = resolve_storage_url(tune.get("storage"), root)
    shown = display_url(url)
    backend = parse_url(url).get_backend_name()
    engine: dict[str, Any] = {}
    if backend in ("postgresql", "mysql"):
        engine["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        storage = _connect(url, engine, tune)
    except (ImportError, sqlalchemy.exc.NoSuchModuleError):
        raise UserError(f"tune.storage {shown}: no database driver for {backend} is installed (PostgreSQL's comes "
                        "with the tune extra: pip install -e '.[tune]')") from None
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise UserError(f"cannot reach the study storage {shown}: {reason[0] if reason else type(exc).__name__}") \
            from None
    return storage, shown


def _connect(url: str, engine: Mapping[str, Any], tune: Mapping, attempts: int = 3) -> optuna.storages.RDBStorage:
    """The storage; workers starting at once on a fresh database race to create its tables: the loser retries."""
    heartbeat = check_positive_int(tune.get("heartbeat_interval_s"), "tune.heartbeat_interval_s")
    grace = check_positive_int(tune.get("grace_period_s"), "tune.grace_period_s")
    def connect() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5: chosen knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=dict(engine), heartbeat_interval=heartbeat,
                                              grace_period=grace)

    for attempt in range(1, attempts):
        try:
            return connect()
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            time.sleep(attempt)  # the other worker is creating the tables
    return connect()


def _instantiate(module: Any, section: object, field: str, extra: Mapping[str, Any] = ()) -> Any:
    """``module.<section.name>(**other keys of section, **extra)`` with one-line errors naming ``field``."""
    names = [n for n in module.__all__ if n[0].isupper() and not n.startswith("Base")]
    name = check_choice(require(check_mapping(section, field), "name", f"{field}.name"), f"{field}.name", names)
    kwargs = {k: v for k, v in section.items() if k != "name"} | dict(extra)
    try:
        return getattr(module, name)(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{field}: {name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) failed: {exc}") \
            from None


def worker_seed(seed: object, worker: object, n_existing: int) -> int | None:
    """The sampler seed of this worker: None stays None (unseeded); else one per (seed, worker, trials so far)."""
    if seed is None:
        return None
    check_number(worker, "tune.worker", integer=True, minimum=0)
    return stable_seed("tune-sampler", seed, worker, n_existing) % 2**32  # numpy's RandomState takes 32 bits


def make_sampler(tune: Mapping, n_existing: int) -> optuna.samplers.BaseSampler:
    section = dict(tune.get("sampler") or {})
    seed = worker_seed(section.pop("seed", None), tune.get("worker", 0), n_existing)
    return _instantiate(optuna.samplers, section, "tune.sampler", {} if seed is None else {"seed": seed})


def make_pruner(tune: Mapping) -> optuna.pruners.BasePruner:
    return _instantiate(optuna.pruners, tune.get("pruner"), "tune.pruner")


def study_name(tune: Mapping) -> str:
    name = tune.get("study_name")
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"tune.study_name must be a non-empty name; got {name!r}")
    return name


def create_or_load(tune: Mapping, storage: optuna.storages.BaseStorage,
                   direction: str) -> tuple[optuna.Study, bool]:
    """(the study, whether this call created it). Continuing an existing study is the normal case.

    ``direction`` (``maximize`` | ``minimize``) is how ``tune.metric`` is optimised; a continued study must
    optimise one value the same way. Creation is decided by the storage's unique study name, so of two workers
    starting at once exactly one is the creator.
    """
    pruner, name = make_pruner(tune), study_name(tune)
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=direction, pruner=pruner,
                                    sampler=make_sampler(tune, 0))
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        pass
    existing = optuna.load_study(storage=storage, study_name=name)
    if existing.directions != [optuna.study.StudyDirection[direction.upper()]]:
        found = " and ".join(d.name.lower() for d in existing.directions)
        raise UserError(f"study {name!r} in the storage optimises {found}, but tune.metric={tune.get('metric')} "
                        f"needs one value to {direction}: use a new tune.study_name")
    n_existing = len(existing.get_trials(deepcopy=False))
    return optuna.load_study(storage=storage, study_name=name, pruner=pruner,
                             sampler=make_sampler(tune, n_existing)), False


def wait_for_user_attr(study: optuna.Study, key: str, timeout_s: float, poll_s: float = 0.5) -> Any:
    """The study's user attribute ``key`` once another worker has set it (None after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = study.user_attrs.get(key)
        if value is not None or time.monotonic() >= deadline:
            return value
        time.sleep(poll_s)
