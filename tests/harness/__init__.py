"""Honest stand-ins for what the add-on talks to: AWS (moto server), splunkd (REST emulator), and the
way splunkd runs a modular input (subprocess with XML on stdin)."""
