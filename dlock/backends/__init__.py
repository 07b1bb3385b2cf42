"""Backends, one module each, chosen by URL scheme in dlock.targets."""
