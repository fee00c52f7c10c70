"""A msgspec Mapper: events keep their types on the way back, and bad payloads fail loudly.

eventsourcing's own Mapper decodes into an untyped dict and sets it as the event's __dict__, so
a msgspec Transcoder would hand back strings for UUID, datetime and Decimal. A Mapper sees the
event class (from the topic) and can decode strictly into it. Each event class gets a msgspec
Struct mirroring its dataclass fields (less originator id and version, which live in columns);
unknown fields, missing fields and wrong types raise ``MapperDeserialisationError``.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any
from uuid import UUID

import msgspec
import msgspec.structs
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import get_topic, resolve_topic

_SKIP = frozenset({"originator_id", "originator_version"})
_encoder = msgspec.json.Encoder(order="sorted")


class NoTranscoder(Transcoder):
    """Placeholder: the Mapper below encodes whole events itself."""

    def encode(self, obj: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError


_FIELDS: dict[type[Any], tuple[str, ...]] = {}
_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _fields(cls: type[Any]) -> tuple[str, ...]:
    if cls not in _FIELDS:
        _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.name not in _SKIP)
    return _FIELDS[cls]


def _decoder(cls: type[Any]) -> msgspec.json.Decoder[Any]:
    if cls not in _DECODERS:
        _DECODERS[cls] = _build_decoder(cls)
    return _DECODERS[cls]


def _build_decoder(cls: type[Any]) -> msgspec.json.Decoder[Any]:
    hints = typing.get_type_hints(cls)
    fields: list[Any] = [(name, hints[name]) for name in _fields(cls)]
    if getattr(cls, "class_version", 1) > 1:
        fields.append(("class_version", int, 1))
    state = msgspec.defstruct(
        f"{cls.__qualname__}State", fields, forbid_unknown_fields=True, kw_only=True
    )
    return msgspec.json.Decoder(state)


_CLASSES: dict[str, type[Any]] = {}


def _where(stored_event: StoredEvent) -> str:
    return (f"topic {stored_event.topic!r}, stream {stored_event.originator_id}, "
            f"version {stored_event.originator_version}")


_VIEWS: dict[tuple[str, type[Any]], msgspec.json.Decoder[Any] | None] = {}
V = typing.TypeVar("V", bound=msgspec.Struct)


def decode_fields(topic: str, state: bytes, view: type[V], event: typing.Callable[[], Any]) -> V:
    """Only the payload fields ``view`` (a msgspec Struct) names, decoded straight from the
    stored bytes, types checked: for a projection that reads a million events for a few of
    their fields (a rebuild), about twice as fast as decoding whole events. An event class with
    upcasters (class_version > 1) may store older shapes, so for it the whole event is decoded
    (``event()``) and the fields taken from it."""
    key = (topic, view)
    if key not in _VIEWS:
        try:
            cls = _CLASSES.get(topic) or _CLASSES.setdefault(topic, resolve_topic(topic))
        except Exception as exc:
            msg = f"unknown event type {topic!r}: {exc}"
            raise MapperDeserialisationError(msg) from exc
        _VIEWS[key] = (msgspec.json.Decoder(view) if getattr(cls, "class_version", 1) == 1
                       else None)
    decoder = _VIEWS[key]
    if decoder is None:
        whole = event()
        return view(**{name: getattr(whole, name) for name in view.__struct_fields__})
    try:
        decoded: V = decoder.decode(state)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        msg = f"cannot decode payload of {topic!r}: {exc}"
        raise MapperDeserialisationError(msg) from exc
    return decoded


class MsgspecMapper(Mapper[UUID]):
    """Stores an event's fields as sorted-key JSON; decodes them strictly by the event's type."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        cls = type(domain_event)
        state = {name: getattr(domain_event, name) for name in _fields(cls)}
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(cls),
            state=_encoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        # The hot path of every replay and rebuild: one dict lookup for the class, one strict
        # msgspec decode; the error message is only formatted when there is an error.
        topic = stored_event.topic
        cls = _CLASSES.get(topic)
        if cls is None:
            try:
                cls = _CLASSES.setdefault(topic, resolve_topic(topic))
            except Exception as exc:
                msg = f"unknown event type at {_where(stored_event)}: {exc}"
                raise MapperDeserialisationError(msg) from exc
        try:
            if getattr(cls, "class_version", 1) > 1:
                state = self._upcast(cls, stored_event.state)
            else:
                state = msgspec.structs.asdict(_decoder(cls).decode(stored_event.state))
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
            msg = f"cannot decode payload at {_where(stored_event)}: {exc}"
            raise MapperDeserialisationError(msg) from exc
        oid = stored_event.originator_id
        state["originator_id"] = oid if isinstance(oid, UUID) else UUID(oid)
        state["originator_version"] = stored_event.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event

    @staticmethod
    def _upcast(event_class: type[Any], data: bytes) -> dict[str, Any]:
        raw: dict[str, Any] = msgspec.json.decode(data)
        version = raw.pop("class_version", 1)
        while version < event_class.class_version:
            getattr(event_class, f"upcast_v{version}_v{version + 1}")(raw)
            version += 1
        raw["class_version"] = version
        decoded = msgspec.convert(raw, _decoder(event_class).type)
        return {name: getattr(decoded, name) for name in _fields(event_class)}
