"""The GraphQL schema, merged from each domain's Query and Mutation."""

from __future__ import annotations

import strawberry
from strawberry.tools import merge_types

from lumio.auth.graphql import AuthMutation, AuthQuery
from lumio.channel_status.graphql import ChannelStatusQuery
from lumio.channels.graphql import ChannelsMutation, ChannelsQuery
from lumio.history.graphql import HistoryQuery
from lumio.manual_connect.graphql import ManualConnectMutation, ManualConnectQuery
from lumio.members.graphql import MembersMutation, MembersQuery
from lumio.spotify.graphql import SpotifyMutation, SpotifyQuery
from lumio.webhooks.graphql import WebhooksMutation, WebhooksQuery

Query = merge_types(
    "Query",
    (
        ChannelStatusQuery,
        ManualConnectQuery,
        ChannelsQuery,
        AuthQuery,
        SpotifyQuery,
        HistoryQuery,
        MembersQuery,
        WebhooksQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        ManualConnectMutation,
        ChannelsMutation,
        AuthMutation,
        SpotifyMutation,
        MembersMutation,
        WebhooksMutation,
    ),
)

schema = strawberry.Schema(query=Query, mutation=Mutation)
