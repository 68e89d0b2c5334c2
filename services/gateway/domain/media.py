"""The MP4 length reader the gateway prices translations with (``services.media.mp4``).

Shared with the jobs service, which checks a result's length against what was paid for, and
with the simulator, which reads a source's length as a provider would.
"""

from services.media.mp4 import Duration, ReadFrom, Unmeasurable, duration, tiny_mp4

__all__ = ["Duration", "ReadFrom", "Unmeasurable", "duration", "tiny_mp4"]
