"""What CloudNativePG and the old in-cluster server configure, reproduced as files for the tests.

The operator writes its own ``postgresql.conf``, ``pg_hba.conf`` and PgBouncer files inside the
cluster, where no test here can run them. These modules write the same rules as plain files, so
that tests run them on Debian's real PostgreSQL and PgBouncer on loopback: what passes there is
the rules, proven on real binaries. The program never imports them.
"""
