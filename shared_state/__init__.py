"""The state every process of one deployment shares, on one machine or on several: each IB
login's pacing log, the lock that keeps one writer per bar series, and the lock that keeps one
live service per home.

Two backends behind one interface. By default SQLite files and `flock` under `$IBW_HOME`, which
need no server and hold on one machine. With `IBW_POSTGRES_URL` set, PostgreSQL: a pacing
decision is one transaction under a transaction-scoped advisory lock of its login, and a held
lock is a session-scoped advisory lock that the server frees when its holder's connection ends
(a killed process included), so the rules hold across machines.

May import the standard library and psycopg2 only.
"""
