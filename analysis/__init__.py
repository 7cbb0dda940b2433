"""Analysis: turns workdirs (config.json, metrics.jsonl, summary.json) into tables.

Reads only the files that training writes; never imports the trainer.
"""
