"""The HTTP API, wire-compatible with the mail part of the mittwald mStudio API v2."""
