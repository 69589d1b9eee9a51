"""Thin shells that apply the domain's decisions through the ports, recording every step."""
