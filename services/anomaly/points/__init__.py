"""``GET /api/v1/detectors/{id}/points``: a detector's stored points, decimated for charts."""
