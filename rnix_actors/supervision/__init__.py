"""Supervision trees with Erlang/OTP semantics (DESIGN §7)."""
