"""Query side: retrieve, fuse, rank, answer, cite, verify, and keep chat memory."""

from index import quiet_offline_environment

quiet_offline_environment()
