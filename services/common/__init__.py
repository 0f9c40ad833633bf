"""Shared foundation: settings, database, auth, errors, migrations, health."""
