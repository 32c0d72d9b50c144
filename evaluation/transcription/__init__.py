"""Transcribers, error rates and vocoder intelligibility: is generated or vocoded speech what it should say?"""
