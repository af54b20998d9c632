"""kombu's filesystem transport (the embedded broker), with every file it shares written atomically.

The bug (kombu 5.7.0, kombu#1551, still open). A publisher creates the message file under its final
name and only then writes the message into it (kombu/transport/filesystem.py, Channel._put); the
lock it takes is one no reader asks for. A worker that looks at the folder in between moves the
empty or half-written file away, reads it and fails in `loads` with JSONDecodeError, which Celery
reports as "Unrecoverable error": the worker exits, and the message is gone (the reaper sends the
run again after RUN_REQUEUE_AFTER_SECONDS). The exchange tables in the control folder have the same
gap: the first process to bind a queue creates the table with "wb", which also empties a table
another process has just written.

The fix, with the same folders, file names and `filesystem://` URL:
- a message is written under a name readers skip (a leading dot and a `.part` suffix: it is neither
  `*.msg` nor `<anything>.<queue>.msg`) and then renamed into place with os.replace, atomic on
  POSIX: a reader sees no file or the whole message, never part of one. A publisher killed while
  writing leaves only a `.part` file, which nothing reads;
- a consumer claims a message by renaming it into the processed folder (in the same broker folder,
  so on the same file system: kombu moves it to the system's temporary folder, which may be
  another file system, where a "move" is a copy that two workers can make at once), then reads it;
- a message that still cannot be read (a file damaged by hand, or left by kombu's own transport) is
  set aside as `<name>.bad` in the processed folder and logged, rather than stop the worker;
- an exchange table is changed under a lock of its own and written with the same rename.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path
from queue import Empty
from time import monotonic

from kombu import transport
from kombu.exceptions import ChannelError
from kombu.transport import filesystem as kombu_filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property

log = logging.getLogger("portal.broker")

PART_SUFFIX = ".part"


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that a reader finds no file or the whole of it, never a part."""
    path = os.fspath(path)
    folder, name = os.path.split(path)
    part = os.path.join(folder, f".{name}.{uuid.uuid4().hex}{PART_SUFFIX}")
    try:
        with open(part, "xb") as f:
            f.write(data)
        os.replace(part, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(part)
        raise


class Channel(kombu_filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put a message on `queue`: written aside, then renamed into place (see the module)."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        try:
            write_atomically(path, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc

    def _get(self, queue):
        """The next message on `queue`, claimed by a rename only one consumer can win."""
        wanted = f"{queue}.msg"
        processed = self._claim_folder
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = processed / name
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except FileNotFoundError:
                continue  # another consumer took it
            except OSError as exc:
                raise ChannelError(f"Cannot move {name!r} out of the queue folder") from exc
            try:
                payload = claimed.read_bytes()
            except OSError as exc:
                raise ChannelError(f"Cannot read file {str(claimed)!r} from queue.") from exc
            try:
                message = loads(bytes_to_str(payload))
            except (ValueError, UnicodeDecodeError):
                bad = claimed.with_name(name + ".bad")
                claimed.rename(bad)
                log.error("broker: message file %s cannot be read; set aside as %s", name, bad)
                continue
            if not self.store_processed:
                claimed.unlink()
            return message
        raise Empty()

    @cached_property
    def _claim_folder(self) -> Path:
        """Where a consumer moves the message it takes: it must exist, or every claim would fail as if
        another consumer had been first."""
        folder = Path(self.processed_folder)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        entry = kombu_filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table_for_update(exchange) as table:
            if entry not in table:
                table.insert(0, entry)

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        self._purge(queue)
        entry = kombu_filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table_for_update(exchange) as table:
            if entry in table:
                table.remove(entry)

    @contextmanager
    def _table_for_update(self, exchange):
        """The exchange's table as a list to change; written back atomically, one writer at a time.

        Readers (kombu's get_table) open the table file itself; a rename never shows them a part.
        """
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        try:
            with open(file.with_name(file.name + ".lock"), "ab") as lock_file:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
                try:
                    raw = file.read_bytes()
                except FileNotFoundError:
                    raw = b"[]"
                table = [kombu_filesystem.exchange_queue_t(*q) for q in json.loads(raw or b"[]")]
                before = list(table)
                yield table
                if table != before:
                    write_atomically(file, str_to_bytes(dumps(table)))
        except OSError as exc:
            raise ChannelError(f"Cannot update {file}") from exc


class Transport(kombu_filesystem.Transport):
    Channel = Channel


def use_for_filesystem_urls() -> None:
    """Make `filesystem://` mean this transport in this process (portal/celery.py calls it first).

    Rather than Celery's broker_transport setting, which would also apply to a Redis URL set later.
    """
    transport.TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
    transport._transport_cache.pop("filesystem", None)  # kombu's, if anything resolved it already
