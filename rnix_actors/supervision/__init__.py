"""Supervision trees with Erlang/OTP semantics."""
