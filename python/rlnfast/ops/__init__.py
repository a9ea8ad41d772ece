"""The ops: one module per op (same stem as csrc/*/<op>_*.cpp), validate once, dispatch to a backend."""
