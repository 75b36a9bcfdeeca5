"""The ASGI application: REST under /v1, GraphQL at /graphql."""
