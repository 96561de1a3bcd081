"""Judging by comparison, I/O-free: Bradley-Terry strengths from duels, the next pair worth asking, strengths per axis value."""
