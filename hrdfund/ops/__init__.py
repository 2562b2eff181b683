"""What an operator runs on the whole database: backup and restore, the retention purge,
and re-encryption under a new key."""
