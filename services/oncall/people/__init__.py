"""People: who can be on call, and how to reach them (contact methods)."""
