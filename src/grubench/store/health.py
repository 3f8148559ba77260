"""Whether a store can be used, said in one line before anything runs: a URI MLflow cannot
open, a tracking server that does not answer, a SQLite store that is missing (for commands that
only read) or that is not a readable database.

Without these checks MLflow retries an absent server for minutes and then prints its own
traceback, opens a missing SQLite path by creating an empty store, and reports a damaged file as
an SQLAlchemy traceback from deep inside a sweep.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

CONNECT_TIMEOUT_S = float(os.environ.get("GRUBENCH_STORE_TIMEOUT", "10"))
"""How long a tracking server gets to answer its health check (``$GRUBENCH_STORE_TIMEOUT``)."""


def store_problem(uri: str, must_exist: bool = False) -> str | None:
    """Why the store at ``uri`` cannot be used (one line), or None. ``must_exist``: for
    commands that read a store (report, ui), a SQLite file that is not there is a problem
    rather than a new store."""
    problems = uri_problems(uri)
    if problems:
        return problems[0]
    if uri.startswith(("http://", "https://")):
        return server_problem(uri)
    if uri.startswith("sqlite:///"):
        return sqlite_problem(Path(uri[len("sqlite:///") :]), must_exist, uri)
    return None


@functools.lru_cache(maxsize=16)  # a sweep checks every child's config: one URI, checked once
def uri_problems(uri: str) -> tuple[str, ...]:
    """A URI MLflow cannot open: an unknown scheme, or a database whose driver is missing
    (``postgresql://`` without psycopg2), said before anything runs, not as a
    ModuleNotFoundError from inside MLflow."""
    scheme = uri.split(":", 1)[0]
    if scheme in ("http", "https", "file", "databricks") or "://" not in uri:
        return ()
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(uri).get_dialect().import_dbapi()
    except ImportError as err:
        module = getattr(err, "name", None) or str(err)
        package = {"psycopg": "'psycopg[binary]'", "psycopg2": "psycopg2-binary",
                   "MySQLdb": "mysqlclient"}.get(module, module)  # fmt: skip
        return (f"--tracking_uri {scheme}://...: its database driver is not installed "
                f"(no module {module!r}): pip install {package}",)  # fmt: skip
    except (ArgumentError, NoSuchModuleError):
        return (
            f"--tracking_uri {uri!r}: not a store URI MLflow knows; use sqlite:///PATH, "
            "http(s)://HOST:PORT, or a database URI (postgresql://, mysql://, mssql://)",
        )
    return ()


def server_problem(uri: str, timeout: float | None = None) -> str | None:
    """None when an MLflow tracking server answers at ``uri`` within ``timeout`` seconds
    (:data:`CONNECT_TIMEOUT_S`), else why not. The check is MLflow's ``/health``: 200, or 401 /
    403 from a server behind authentication; any other status means something else listens
    there (a proxy that answers every address says 404)."""
    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    health = f"{uri.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout):
            return None
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            return None
        return (f"--tracking_uri {uri}: what answers there is not an MLflow tracking server "
                f"(HTTP {err.code} from {health}); check the address")  # fmt: skip
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        why = f"no answer in {timeout:g} s" if isinstance(reason, TimeoutError) else str(reason)
        return (f"--tracking_uri {uri}: no tracking server answers there ({why}); start it, "
                "e.g. mlflow server --host 127.0.0.1 --port PORT, or fix the address")  # fmt: skip


def sqlite_problem(path: Path, must_exist: bool = False, name: str | None = None) -> str | None:
    """A SQLite store that is missing (with ``must_exist``), is not a file, or is not a
    readable database (truncated, overwritten, not SQLite): checked read-only with SQLite's
    ``quick_check``, so nothing is created or changed."""
    if not path.exists():
        if must_exist:
            where = name or path
            return f"no store at {where}: nothing ran into it yet (grubench run or fit writes one)"
        return None
    if not path.is_file():
        return f"the store {path} is not a file"
    try:
        read_only = f"{path.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(read_only, uri=True)) as db:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as err:
        verdict = str(err)
    if verdict == "ok":
        return None
    return (
        f"the store {path} is damaged ({verdict}); move it aside to start a new store, or "
        f"recover what it holds: sqlite3 {path} .recover | sqlite3 {path}.recovered"
    )


def _chain(error: BaseException | None):
    """``error`` and the exceptions it was raised from."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def server_gone(error: BaseException | None) -> bool:
    """Whether ``error`` comes from a tracking server that stopped answering: a refused or
    failed connection, after MLflow's retries (``Max retries exceeded``)."""
    return any(
        isinstance(e, ConnectionError)
        or type(e).__name__ in ("MaxRetryError", "NewConnectionError")
        or "Max retries exceeded" in str(e)
        for e in _chain(error)
    )


def out_of_space(error: BaseException | None) -> bool:
    """Whether ``error``, or an exception it was raised from, says the disk is full: an
    ``OSError`` with ENOSPC or EDQUOT, or SQLite's "database or disk is full" (which MLflow
    wraps in SQLAlchemy's and its own exceptions)."""
    return any(
        (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT))
        or "database or disk is full" in str(e)
        for e in _chain(error)
    )
