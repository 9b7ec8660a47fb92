"""The support broker: support keys, sessions and the events between their participants."""
