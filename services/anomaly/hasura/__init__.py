"""The Hasura action (scoreAnomalyPoints) and event trigger of nself-anomaly."""
