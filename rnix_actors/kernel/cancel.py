"""Cancellation tokens, as the kernel's modules have always imported them.

The token lives in `rnix_actors.cancel` (below the kernel: drivers and devices honour it
without importing the kernel); this module re-exports it.
"""

from rnix_actors.cancel import Cancelled, CancelToken

__all__ = ["CancelToken", "Cancelled"]
