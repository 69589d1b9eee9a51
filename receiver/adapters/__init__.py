"""Adapters: implementations of `receiver.ports` over real libraries (openstacksdk, pyghmi)."""
