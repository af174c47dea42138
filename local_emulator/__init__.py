"""The local emulator: every function on one port, routed as API Gateway routes them in the cloud."""
