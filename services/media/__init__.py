"""Reading a media file's length from its header: pure functions, no I/O.

Shared by the gateway (a translation is priced by its source's length), the jobs service (a
result is checked against the length that was paid for) and the provider simulator.
"""
