# src/deep/b.py
