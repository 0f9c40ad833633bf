"""The web console: pages over the two services' REST APIs, signed-in per person."""
