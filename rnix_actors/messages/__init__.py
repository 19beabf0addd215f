"""Typed protocol messages between actors: frozen attrs classes, one module per protocol."""
