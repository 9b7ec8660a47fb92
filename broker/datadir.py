"""The data directory, private to the broker's user whatever the umask.

It holds the database (chats, notes, contacts, password hashes), the secrets that key
every hash, seal and cookie, and the encrypted files: the directory is 0700 and every file
in it 0600 (subdirectories 0700). A directory made by an older version, or by hand, that
others can read stops the broker from starting with a message saying what to do, unless
`data_dir_shared_ok` says the operator wants that (a backup user in the group, say): then
the broker leaves the modes of what exists to the operator. What it creates itself is
0600 either way (`hashing.load_or_create_secret`, the transfer store, and the SQLite
database created here first, whose -wal and -shm files SQLite gives the same mode).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from . import sqlite
from .errors import InvalidInput
from .settings import Settings

DIR_MODE = 0o700
FILE_MODE = 0o600


def secure_data_dir(settings: Settings) -> None:
    """Create `settings.data_dir` (0700) or check and tighten it; create the SQLite
    database file 0600 before SQLite would create it under the umask. Raises InvalidInput
    for an existing directory that others may read, unless `data_dir_shared_ok`."""
    path = settings.data_dir
    try:
        path.mkdir(mode=DIR_MODE, parents=True)
        os.chmod(path, DIR_MODE)  # mkdir's mode passes through the umask
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077 and not settings.data_dir_shared_ok:
            raise InvalidInput(
                f"The data directory {path.resolve()} is open to other users (mode "
                f"{mode:04o}), and it holds the database and the broker's secrets. Make it "
                f"private (chmod 700 {path.resolve()}), or set data_dir_shared_ok = true "
                f"(BROKER_DATA_DIR_SHARED_OK=1) if others should read it.") from None
    database = sqlite.database_path(settings.sqlalchemy_url)
    if database is not None:
        # (A missing parent directory is SQLite's to report, as before.)
        with contextlib.suppress(FileExistsError, FileNotFoundError):
            fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            os.fchmod(fd, FILE_MODE)  # os.open's mode passes through the umask too
            os.close(fd)
    if settings.data_dir_shared_ok:
        return
    _tighten(path)
    if database is not None:  # also where database_url puts it outside data_dir
        for name in (database.name, database.name + "-wal", database.name + "-shm"):
            _tighten_one(database.parent / name)


def _tighten(directory: Path) -> None:
    """Everything in `directory`, at any depth, 0600 (directories 0700); only what is
    open to others is changed, so a large transfer directory costs one stat per file."""
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            _tighten_one(Path(root) / name)


def _tighten_one(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or not stat.S_IMODE(info.st_mode) & 0o077:
        return
    os.chmod(path, DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE)
