"""PostgreSQL: the connection pool, the migrations and the expected schema."""
