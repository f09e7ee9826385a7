"""Another node's browser session, as this node's hub sees it (see ``events``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._subscriber import ConnInfo
from .events import SessionOpened

__all__ = ["RemoteSession", "opened_event"]


@dataclass(eq=False, slots=True)
class RemoteSession:
    """Another node's browser session, as this node sees it. ``send``/``close`` do nothing:
    frames for it are delivered by its own node."""

    node: str
    conn_id: int
    dev_id: int
    user_id: int
    info: ConnInfo
    channels: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[str, int]:
        return (self.node, self.conn_id)

    @classmethod
    def from_event(cls, node: str, ev: SessionOpened) -> RemoteSession:
        info = ConnInfo(uuid=ev.uuid, user_agent=ev.user_agent, ip=ev.ip, origin=ev.origin, language=ev.language)
        return cls(node, ev.conn_id, ev.dev_id, ev.user_id, info)

    def send(self, frame: bytes) -> None:
        pass

    def close(self, reason: str) -> None:
        pass


def opened_event(conn_id: int, dev_id: int, user_id: int, info: ConnInfo, channels: tuple[str, ...]) -> SessionOpened:
    return SessionOpened(conn_id, dev_id, user_id, info.uuid, info.user_agent, info.ip, info.origin, info.language,
                         channels)
