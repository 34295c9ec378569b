# src/a.py
