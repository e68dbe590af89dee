"""The inbound side: config, logging, the h11 connection, the gateway, the listener and workers, metrics."""
