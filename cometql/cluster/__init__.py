"""Several nodes, one cluster: the Redis bus and what each node does with it.

* ``bus``: the bus writer, which is also the clustered node's store: it
  group-commits records (as keys, via ``store.redis``) and cluster events, in
  order, with one XADD per batch onto the ``cq:bus`` stream, and decides
  whether a commit waits for Redis;
* ``follower``: ``Cluster`` reads the stream and applies other nodes' records
  and events through the engine, and its reaper drops nodes gone silent;
* ``_compat``: a rolling upgrade, nodes of the previous version beside this
  one (the entry format they read, their keys put in this layout).

Imports ``hub``, ``store``, ``redisurl`` and ``errors``; never the engine or a front.
"""

from .bus import MAX_UNSENT, Bus, open_bus
from .follower import Applier, Cluster

__all__ = ["MAX_UNSENT", "Applier", "Bus", "Cluster", "open_bus"]
