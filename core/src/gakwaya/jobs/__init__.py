"""Background jobs: rq on Redis, or an in-process runner; records in the database."""
