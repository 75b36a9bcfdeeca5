"""GraphQL: the schema merged from each domain's types, and its HTTP endpoint."""
