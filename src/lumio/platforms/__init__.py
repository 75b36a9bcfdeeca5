"""Platform adapters: each turns one platform's API answers into observations (DESIGN §3).

Adding a platform means one adapter module here and one fake under ``fakes/``.
"""
