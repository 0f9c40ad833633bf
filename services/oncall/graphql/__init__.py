"""The Strawberry GraphQL schema (Hasura remote schema) and its SDL export."""
