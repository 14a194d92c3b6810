"""The domain: models, the services every write goes through, selectors, events and access."""
