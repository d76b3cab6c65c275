"""Plugin packages with their own Alembic branches, for test_migrations_branches.py.

- ``mig_base`` (``mig-base``): a table referencing core's ``organizations``, and a
  seed row written by its migration.
- ``mig_child`` (``mig-child``): requires ``mig-base``; its table has a foreign key
  to mig-base's, and its migration copies mig-base's seed row, so it fails on any
  database unless mig-base migrated first.
- ``mig_badlabel`` (``mig-badlabel``): its branch is labelled with another name.
- ``mig_base_next``: a second revision of mig-base, added by a test to a copy of
  the package.
"""
