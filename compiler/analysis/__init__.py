"""Analyses over compiled networks (state bounds; later ops and energy)."""
