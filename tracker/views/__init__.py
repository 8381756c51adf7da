"""Blueprints: one module each; views validate, load, authorize, call one service, respond."""
