"""LLM drivers: replay (offline default), python (host callable), and the driver interface."""
