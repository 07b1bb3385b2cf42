"""Text that must not drive the reader's terminal, made printable (no imports: `dlock --version`
uses it before anything else is loaded)."""

from __future__ import annotations

# C0 controls, DEL and C1 controls move the cursor, clear the screen or start an escape
# sequence; bidi overrides make text read differently from what it is.
_UNPRINTABLE = [*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_SHORT_ESCAPES = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
_ESCAPES = {code: _SHORT_ESCAPES.get(code, f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}") for code in _UNPRINTABLE}


def printable(text: str) -> str:
    """Control characters and bidi overrides as Python writes them in a string: \\n, \\x1b, \\u202e."""
    return text.translate(_ESCAPES)
