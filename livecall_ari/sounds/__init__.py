"""Prompts: the sounds LiveCall plays, made reproducibly from text."""
