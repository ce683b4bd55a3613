"""Device protocols on top of transports; one module per protocol family."""
