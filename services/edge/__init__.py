"""The public edge: HAProxy in front of the gateway replicas (ADR-033).

It owns the admission decision under overload: a request finding every gateway working slot
taken is answered ``503 overloaded`` by HAProxy, in C, before any Python process reads it.
The config is rendered from this package (:mod:`services.edge.haproxy`) so the error body,
the held routes and the limits come from the same sources as the gateway's own.
"""
