"""Sans-IO core: channels, sessions, presence, queues, history and auth.

Nothing in this package does I/O, imports trio, reads a clock or makes random
ids (a test checks), and it imports nothing else of CometQL: it is the bottom of
the package graph. Callers pass ``now`` and the sources of ids and secrets.

The state is split by who owns it, and only its owner changes it:

- ``_hub``: ``Hub``, the facade every caller uses. It decides and builds the
  effects (``_effects``) and holds the other parts;
- ``_presence``: ``Presence``, who is online where: this node's sessions,
  channel and user indexes, and the view of the other nodes' (``_remote``), so
  cluster-wide lookups are answered in one place; ``hub.presence``, changed only
  by the hub;
- ``_state``: ``DurableState`` (auth, user data, revoked tokens, pipe settings,
  history, queues, last-seen), changed only by applying records; ``hub.state``
  is where callers read it;
- ``_remote``: ``RemoteSessions``, the view of other nodes' sessions (``presence.remote``), changed
  only by their bus entries; it returns transitions the hub turns into effects. It keeps counts and
  users, one shared record per session (``_shared``), not who each session is: ``users_in_pipes``
  reads that from the node's session hash;
- ``_inflight``: ``InFlight``, what records decided but not stored yet have
  reserved (records reach ``state`` only once stored: ``Hub.settle``);
- ``_traffic`` and ``_census``: ``stats_history``'s sans-IO half: per-channel
  traffic counters (``Hub.traffic``), the presence census (``take_census``) and
  one sample's rows;
- ``_personal`` and ``_feeds``: personal messages (bounds, each local user's
  feed of their queue, page by page, acknowledgements), ``hub.personal``.

``_browser`` turns browser commands into hub calls, ``_frames`` encodes what
browsers receive. The public modules ``records`` and ``events`` are the
registries of what is persisted and what nodes tell each other; stores and
codecs derive from them.
"""

from ._browser import Login, browser_login, handle_command, open_session
from ._census import ChannelCensus, DevCensus, StatsRow, sample_rows, take_census
from ._effects import Broadcast, Deliver, Disconnect, Effect, LoadQueue, Persist, Refused
from ._feeds import ACK, PAGE, PAGE_BYTES, WINDOW
from ._frames import KNOWN_CAPS, NO_CAPS, Frames, encode_frame, error_frame, sys_frame
from ._hub import MAX_USER_CONNECTIONS, Hub, HubStatistics
from ._names import channel_problem, event_problem, hash_problem, is_valid_channel
from ._personal import QueueFull
from ._remote import RemoteSession, info_of
from ._state import MAX_HISTORY, DurableState, Position
from ._subscriber import ConnInfo, ListSubscriber, Subscriber
from ._traffic import Counts, Traffic
from .events import (
    EVENT_TYPES,
    Change,
    ClusterEvent,
    Kick,
    Published,
    SessionClosed,
    SessionOpened,
    SessionSubscribed,
    UserMessage,
)
from .records import RECORD_TYPES, HistoryEntry, QueuedMessage, Record, is_record

__all__ = [
    "ACK",
    "PAGE",
    "PAGE_BYTES",
    "WINDOW",
    "MAX_HISTORY",
    "KNOWN_CAPS",
    "NO_CAPS",
    "MAX_USER_CONNECTIONS",
    "EVENT_TYPES",
    "RECORD_TYPES",
    "Broadcast",
    "Change",
    "ChannelCensus",
    "ClusterEvent",
    "ConnInfo",
    "Counts",
    "Deliver",
    "DevCensus",
    "Disconnect",
    "DurableState",
    "Effect",
    "Frames",
    "HistoryEntry",
    "Hub",
    "HubStatistics",
    "Kick",
    "LoadQueue",
    "ListSubscriber",
    "Login",
    "Persist",
    "Position",
    "Published",
    "QueueFull",
    "QueuedMessage",
    "Record",
    "Refused",
    "RemoteSession",
    "SessionClosed",
    "SessionOpened",
    "SessionSubscribed",
    "StatsRow",
    "Subscriber",
    "Traffic",
    "UserMessage",
    "browser_login",
    "channel_problem",
    "encode_frame",
    "error_frame",
    "event_problem",
    "handle_command",
    "hash_problem",
    "info_of",
    "is_record",
    "is_valid_channel",
    "open_session",
    "sample_rows",
    "take_census",
    "sys_frame",
]
