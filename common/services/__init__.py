"""Business logic per resource: plain arguments in, plain data out; no flask.Request."""
