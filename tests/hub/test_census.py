"""stats_history's sans-IO half: traffic counters, the presence census, one sample's rows.

Other nodes' sessions come in through ``sync_node`` (what the follower does
with a node's session hash), so the census is checked as the node that writes
a cluster's sample sees it.
"""

from __future__ import annotations

from cometql.hub import (
    ChannelCensus,
    DevCensus,
    Hub,
    ListSubscriber,
    Published,
    SessionOpened,
    StatsRow,
    sample_rows,
    take_census,
)

from ._helpers import NOW, apply, make_hub


def _online(hub: Hub, conn_id: int, dev: int, user: int, *channels: str) -> ListSubscriber:
    sub = ListSubscriber(conn_id, dev_id=dev, user_id=user)
    apply(hub, hub.connect(sub, NOW))
    apply(hub, hub.subscribe(sub, channels, NOW))
    return sub


def test_traffic_counts_publishes_here_and_deliveries_here_per_channel_and_take_resets() -> None:
    hub = make_hub(node_id="A", count_traffic=True)
    _online(hub, 1, 5, 0, "chat")
    _online(hub, 2, 5, 0, "chat")
    apply(hub, hub.publish(5, "chat", "e", "m", NOW))
    apply(hub, hub.publish(5, "chat", "e", "m", NOW))
    apply(hub, hub.publish(5, "empty", "e", "m", NOW))
    # published on another node: delivered here, published there (that node counts it)
    apply(hub, hub.remote_changes("B", [Published(5, "chat", "e", "m", NOW, None)], NOW))
    taken = hub.traffic.take()
    assert taken == {(5, "chat"): (2, 6), (5, "empty"): (1, 0)}
    assert all(type(n) is int for pair in taken.values() for n in pair)  # plain integers, for Redis too
    assert hub.traffic.take() == {}


def test_a_hub_that_does_not_sample_counts_nothing() -> None:
    hub = make_hub()
    _online(hub, 1, 5, 0, "chat")
    apply(hub, hub.publish(5, "chat", "e", "m", NOW))
    assert hub.traffic.take() == {}


def test_census_counts_every_nodes_sessions_and_each_user_once() -> None:
    hub = make_hub(node_id="A")
    _online(hub, 1, 5, 7, "chat", "news")  # user 7 here ...
    _online(hub, 2, 5, 0, "chat")  # an anonymous session: a session, not a user
    _online(hub, 3, 6, 7, "chat")  # another dev: counted apart
    apply(hub, hub.sync_node("B", [  # ... and on node B, with user 8
        SessionOpened(1, 5, 7, channels=("chat",)),
        SessionOpened(2, 5, 8, channels=("news",)),
        SessionOpened(3, 5, 8),
    ], NOW))
    assert take_census(hub, 10) == [
        DevCensus(5, sessions=5, users=2, channels=(ChannelCensus("chat", 3, 1), ChannelCensus("news", 2, 2)),
                  complete=True),
        DevCensus(6, sessions=1, users=1, channels=(ChannelCensus("chat", 1, 1),), complete=True),
    ]


def test_census_keeps_the_busiest_channels_most_subscribers_first_then_by_name() -> None:
    hub = make_hub()
    _online(hub, 1, 5, 1, "a", "b", "c")
    _online(hub, 2, 5, 2, "c", "b")
    _online(hub, 3, 5, 3, "c")
    (census,) = take_census(hub, 2)
    assert census.channels == (ChannelCensus("c", 3, 3), ChannelCensus("b", 2, 2))
    assert census.complete is False  # "a" has a subscriber but did not make the cut
    assert take_census(hub, 3)[0].complete is True


def test_sample_rows_totals_first_then_channels_with_their_traffic() -> None:
    census = [DevCensus(5, 4, 3, (ChannelCensus("chat", 3, 2), ChannelCensus("news", 1, 1)), complete=True)]
    traffic = {(5, "chat"): (2, 6), (5, "quiet"): (4, 0), (5, "idle"): (0, 0), (9, "x"): (1, 0)}
    assert sample_rows(60, census, traffic, top=3) == [
        StatsRow(5, 60, "", 4, 3, 6, 6),
        StatsRow(5, 60, "chat", 3, 2, 2, 6),
        StatsRow(5, 60, "news", 1, 1, 0, 0),
        StatsRow(5, 60, "quiet", 0, 0, 4, 0),  # nobody subscribed, but it carried messages: fills a place
        StatsRow(9, 60, "", 0, 0, 1, 0),  # a dev with traffic only
        StatsRow(9, 60, "x", 0, 0, 1, 0),
    ]


def test_sample_rows_caps_the_channels_and_never_guesses_about_channels_past_the_cut() -> None:
    census = [DevCensus(5, 4, 3, (ChannelCensus("chat", 3, 2),), complete=False)]
    traffic = {(5, "chat"): (1, 3), (5, "other"): (9, 9)}
    rows = sample_rows(60, census, traffic, top=1)
    # "other" may have subscribers (the census stopped at one channel): no row with made-up zeros for it
    assert rows == [StatsRow(5, 60, "", 4, 3, 10, 12), StatsRow(5, 60, "chat", 3, 2, 1, 3)]


def test_a_dev_that_went_quiet_gets_one_row_of_zeros() -> None:
    assert sample_rows(120, [], {}, top=5, also=[5]) == [StatsRow(5, 120, "", 0, 0, 0, 0)]
    assert sample_rows(120, [], {}, top=5) == []
