"""IAPT Pathways: tested helpers behind the replication notebooks of Harwood et al. (2021)."""

__version__ = "0.2.0"
