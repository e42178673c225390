"""Wire value types the simulator's records hold, beyond plain str/int/float/bool/list/dict."""

from __future__ import annotations

import time
import uuid

NULL_REF = "OpaqueRef:NULL"
EPOCH = "19700101T00:00:00Z"


class DateTime(str):
    """An XAPI datetime: `YYYYMMDDTHH:MM:SSZ`. A str, so JSON carries it as a string, while
    XML-RPC wraps it in `<dateTime.iso8601>`."""

    __slots__ = ()


class Int32(int):
    """The one 32-bit int of the API (`valid_ref_counts`): `<i4>` in XML-RPC."""

    __slots__ = ()


def datetime_at(timestamp: float) -> DateTime:
    return DateTime(time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime(timestamp)))


def now() -> DateTime:
    return datetime_at(time.time())


NEVER = DateTime(EPOCH)


def new_ref() -> str:
    return f"OpaqueRef:{uuid.uuid4()}"


def new_uuid() -> str:
    return str(uuid.uuid4())
